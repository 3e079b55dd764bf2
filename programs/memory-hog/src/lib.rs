//! `memory-hog` (test program): allocates and touches the configured number of MiB, then
//! allows the request. With more than the host's memory cap it fails: the allocation is
//! refused, and the program aborts.
//!
//! Configuration: `{"mebibytes": 128}`.

use sigil_program::{OracleData, Request, Result, parse_config};

/// The program's configuration.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// How much to allocate, in MiB.
    mebibytes: usize,
}

/// Allocates `mebibytes` MiB, one MiB at a time, keeping all of it until the end.
pub fn evaluate(_request: &Request, config: &[u8], _oracle: &OracleData) -> Result {
    let config: Config = parse_config(config)?;
    let mut chunks = Vec::with_capacity(config.mebibytes);
    for i in 0..config.mebibytes {
        // Written, so the pages are really used; the value depends on `i` so nothing folds.
        chunks.push(vec![i as u8; 1 << 20]);
    }
    std::hint::black_box(&chunks);
    Ok(())
}

sigil_program::export_program!(evaluate);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_what_it_is_told() {
        let request = Request::default();
        assert_eq!(
            evaluate(&request, br#"{"mebibytes":2}"#, &OracleData::default()),
            Ok(())
        );
    }
}
