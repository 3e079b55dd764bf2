//! `sigil devnet`: a local network until Ctrl-C.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use sigil::devnet::{Devnet, DevnetConfig, DevnetOpts, LedgerMode};

/// Options of `sigil devnet`.
#[derive(Args)]
pub struct DevnetArgs {
    #[command(flatten)]
    devnet: DevnetOpts,
    /// Keep the data and logs here (kept at exit); default: a temporary directory, deleted at
    /// exit.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Start the nodes but do not jump-start the network.
    #[arg(long)]
    no_jump_start: bool,
}

/// Runs `sigil devnet`.
pub fn run(args: DevnetArgs) -> anyhow::Result<()> {
    let binary = std::env::current_exe().context("cannot find the sigil executable")?;
    // A temporary directory lives until this function returns, after the devnet stopped.
    let (temp, dir) = sigil::devnet::work_dir(args.dir.as_deref(), "sigil-devnet-")?;
    let config = args.devnet.apply(DevnetConfig {
        jump_start: !args.no_jump_start,
        ..DevnetConfig::new(binary, dir.clone())
    });
    crate::block_on(async move {
        let started = Instant::now();
        eprintln!(
            "data and logs in {}{}",
            dir.display(),
            if temp.is_some() {
                " (deleted at exit; use --dir to keep them)"
            } else {
                ""
            }
        );
        let mut devnet = Devnet::start(config).await?;
        print_summary(&devnet, started.elapsed()).await?;
        let outcome = wait_for_stop(&mut devnet).await;
        eprintln!("stopping the devnet");
        devnet.stop().await?;
        drop(temp);
        outcome
    })
}

async fn print_summary(devnet: &Devnet, took: Duration) -> anyhow::Result<()> {
    use sigil_client::rpc::LedgerApiClient as _;
    let set = devnet.client().rpc().signer_set().await?;
    println!("devnet ready in {:.1}s", took.as_secs_f64());
    println!("ledger       {}", devnet.ledger_url());
    println!("data         {}", devnet.dir().display());
    if devnet.config().ledger == LedgerMode::Replicated {
        for replica in devnet.ledgers() {
            let pid = replica
                .pid()
                .map_or_else(|| "-".to_owned(), |p| p.to_string());
            println!("replica {} {} pid {pid}", replica.name, replica.rpc_url);
        }
    }
    match set.network_key {
        Some(key) => println!("network key  {key}"),
        None => println!("network key  none yet (not jump-started)"),
    }
    println!(
        "threshold    {} of {} signers",
        set.threshold,
        set.signers.len()
    );
    println!();
    println!(
        "  {:<8}  {:<7}  {:<66}  {:<15}  LOG",
        "NAME", "ROLE", "ACCOUNT", "ENDPOINT"
    );
    for node in devnet.nodes() {
        let role = if set.signers.contains(&node.account) {
            "signer"
        } else {
            "relayer"
        };
        println!(
            "  {:<8}  {:<7}  {:<66}  {:<15}  {}",
            node.name,
            role,
            node.account.to_string(),
            node.endpoint,
            node.log.display()
        );
    }
    println!();
    println!("Press Ctrl-C to stop.");
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM; warns when a process exits, fails if the ledger does.
async fn wait_for_stop(devnet: &mut Devnet) -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    let mut reported: Vec<String> = Vec::new();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                for name in devnet.exited() {
                    if name == "ledger" {
                        anyhow::bail!(
                            "the ledger exited; see {}",
                            devnet.dir().join("ledger.log").display()
                        );
                    }
                    if !reported.contains(&name) {
                        eprintln!(
                            "warning: node {name} exited; see {}",
                            devnet.dir().join(format!("{name}.log")).display()
                        );
                        reported.push(name);
                    }
                }
            }
        }
    }
}
