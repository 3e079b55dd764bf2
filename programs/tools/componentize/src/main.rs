//! `componentize IN.wasm OUT.wasm`: turns the core module that `cargo build --target
//! wasm32-unknown-unknown` makes of a Sigil program into the component nodes run.
//!
//! The world is chosen from the module itself: `program-with-hash` if it exports
//! `custom-hash`, else `program`. Any `component-type` sections already in the module (the SDK
//! links one per world it knows) are replaced by the chosen world from the WIT file the host
//! uses, so the component always matches the host's interface. Everything is deterministic:
//! the same module gives the same component, byte for byte.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use wasmparser::{Parser, Payload};
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::Resolve;

/// The program interface, the same file the host compiles against.
const WIT: &str = include_str!("../../../../crates/programs/wit/program.wit");

fn main() -> anyhow::Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [input, output] = args.as_slice() else {
        bail!("usage: componentize IN.wasm OUT.wasm");
    };
    let module =
        std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let component = componentize(&module)
        .with_context(|| format!("cannot componentize {}", input.display()))?;
    std::fs::write(output, &component)
        .with_context(|| format!("cannot write {}", output.display()))?;
    Ok(())
}

/// The component for a program's core module.
fn componentize(module: &[u8]) -> anyhow::Result<Vec<u8>> {
    let (mut stripped, exports_custom_hash) = strip_component_types(module)?;
    let mut resolve = Resolve::default();
    let package = resolve.push_str("program.wit", WIT)?;
    let world_name = if exports_custom_hash {
        "program-with-hash"
    } else {
        "program"
    };
    let world = resolve.select_world(&[package], Some(world_name))?;
    wit_component::embed_component_metadata(
        &mut stripped,
        &resolve,
        world,
        StringEncoding::UTF8,
        false,
    )?;
    ComponentEncoder::default()
        .validate(true)
        .module(&stripped)?
        .encode()
}

/// Copies `module` without its `component-type*` custom sections; also says whether it exports
/// `custom-hash`, and refuses modules that import anything (programs get no host functions).
fn strip_component_types(module: &[u8]) -> anyhow::Result<(Vec<u8>, bool)> {
    let mut out = wasm_encoder::Module::new();
    let mut exports_custom_hash = false;
    for payload in Parser::new(0).parse_all(module) {
        let payload = payload.context("not a valid WebAssembly module")?;
        match &payload {
            Payload::Version { encoding, .. } => {
                if *encoding != wasmparser::Encoding::Module {
                    bail!("already a component; expected the core module cargo builds");
                }
                continue;
            }
            Payload::ImportSection(reader) => {
                if let Some(import) = reader.clone().into_imports().next() {
                    let import = import?;
                    bail!(
                        "the module imports `{}::{}`; programs may import nothing (is a \
                         dependency using WASI, wasm-bindgen or getrandom's js backend?)",
                        import.module,
                        import.name
                    );
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader.clone() {
                    exports_custom_hash |= export?.name == "custom-hash";
                }
            }
            Payload::CustomSection(section) if section.name().starts_with("component-type") => {
                continue;
            }
            _ => {}
        }
        if let Some((id, range)) = payload.as_section() {
            let start = usize::try_from(range.start)?;
            let end = usize::try_from(range.end)?;
            out.section(&wasm_encoder::RawSection {
                id,
                data: &module[start..end],
            });
        }
    }
    Ok((out.finish(), exports_custom_hash))
}
