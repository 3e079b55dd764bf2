//! `sigil status`: what the ledger says about the network.

use clap::Args;
use sigil_client::rpc::LedgerApiClient as _;
use sigil_client::types::{JumpStartStatus, SignerSet};
use sigil_primitives::AccountId;

use crate::common::LedgerOpt;
use sigil::devnet::{DEV_NAMES, dev_keypair};

/// Options of `sigil status`.
#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    ledger: LedgerOpt,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,
}

/// Runs `sigil status`.
pub fn run(args: StatusArgs) -> anyhow::Result<()> {
    crate::block_on(async {
        let client = args.ledger.connect().await?;
        let rpc = client.rpc();
        let head = rpc.head().await?;
        let validators = rpc.validators().await?;
        let set = rpc.signer_set().await?;
        let parameters = rpc.parameters().await?;
        let programs = rpc.programs().await?;
        let registrations = rpc.registrations(None).await?;
        let offences = rpc.offences().await?;

        if args.json {
            let out = serde_json::json!({
                "ledger": args.ledger.url,
                "chain_id": client.chain_id(),
                "head": head.height.0,
                "validators": validators.iter().map(|v| serde_json::json!({
                    "account": v.account.to_string(),
                    "name": dev_name(&v.account),
                    "endpoint": v.endpoint.to_string(),
                    "stake": v.stake,
                    "joined": v.joined.0,
                    "signer": set.signers.contains(&v.account),
                })).collect::<Vec<_>>(),
                "signer_set": set,
                "parameters": parameters,
                "programs": programs,
                "registrations": registrations.iter().map(|(key, r)| serde_json::json!({
                    "verifying_key": key.to_string(),
                    "eth_address": sigil::eth::address(key).to_checksum(None),
                    "owner": r.owner.to_string(),
                    "programs": r.programs,
                    "derivation_path": r.derivation_path.to_string(),
                    "registered": r.registered.0,
                })).collect::<Vec<_>>(),
                "offences": offences,
            });
            println!("{out}");
            return Ok(());
        }

        println!(
            "ledger       {} (chain {}, head #{})",
            args.ledger.url,
            client.chain_id(),
            head.height.0
        );
        println!("jump start   {}", jump_start_text(&set));
        println!(
            "network key  {}",
            set.network_key
                .map_or_else(|| "none yet".to_owned(), |k| k.to_string())
        );
        println!(
            "signers      {}, threshold {} (next jump start or reshare: {}, threshold {})",
            set.signers.len(),
            set.threshold,
            parameters.signer_count,
            parameters.threshold
        );
        if let Some(reshare) = &set.pending_reshare {
            println!(
                "reshare      in progress since #{}: {}/{} new signers confirmed, threshold {}",
                reshare.started.0,
                reshare.confirmations.len(),
                reshare.new_signers.len(),
                reshare.new_threshold
            );
        }
        let excluded = set.excluded_at(head.height.0);
        if !excluded.is_empty() {
            println!(
                "excluded     {}",
                excluded
                    .iter()
                    .map(name_or_account)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }

        println!();
        println!("validators ({})", validators.len());
        let rows: Vec<Vec<String>> = validators
            .iter()
            .map(|v| {
                vec![
                    dev_name(&v.account).unwrap_or("-").to_owned(),
                    if set.signers.contains(&v.account) {
                        "signer".to_owned()
                    } else {
                        "relayer".to_owned()
                    },
                    v.account.to_string(),
                    v.endpoint.to_string(),
                    v.stake.to_string(),
                    format!("#{}", v.joined.0),
                ]
            })
            .collect();
        table(
            &["NAME", "ROLE", "ACCOUNT", "ENDPOINT", "STAKE", "JOINED"],
            &rows,
        );

        println!();
        println!("programs ({})", programs.len());
        let rows: Vec<Vec<String>> = programs
            .iter()
            .map(|p| {
                vec![
                    p.id.to_string(),
                    p.size.to_string(),
                    p.ref_count.to_string(),
                    p.deployer.to_string(),
                ]
            })
            .collect();
        table(&["ID", "SIZE", "KEYS", "DEPLOYER"], &rows);

        println!();
        println!("registrations ({})", registrations.len());
        let rows: Vec<Vec<String>> = registrations
            .iter()
            .map(|(key, r)| {
                vec![
                    key.to_string(),
                    sigil::eth::address(key).to_checksum(None),
                    r.programs.as_slice().len().to_string(),
                    r.owner.to_string(),
                ]
            })
            .collect();
        table(
            &["VERIFYING KEY", "ETH ADDRESS", "PROGRAMS", "OWNER"],
            &rows,
        );

        println!();
        println!("offences ({})", offences.len());
        let rows: Vec<Vec<String>> = offences
            .iter()
            .map(|o| {
                vec![
                    format!("#{}", o.reported.0),
                    o.recorded
                        .map_or_else(|| "pending".to_owned(), |b| format!("#{}", b.0)),
                    format!(
                        "{}{}",
                        o.kind.as_str(),
                        if o.proven { " (proven)" } else { "" }
                    ),
                    name_or_account(&o.offender),
                    o.reporters
                        .iter()
                        .map(name_or_account)
                        .collect::<Vec<_>>()
                        .join(", "),
                    o.slashed.to_string(),
                ]
            })
            .collect();
        table(
            &[
                "REPORTED",
                "RECORDED",
                "KIND",
                "OFFENDER",
                "REPORTERS",
                "SLASHED",
            ],
            &rows,
        );
        Ok(())
    })
}

fn jump_start_text(set: &SignerSet) -> String {
    match &set.jump_start {
        JumpStartStatus::Ready => "not yet (governance submits jump_start)".to_owned(),
        JumpStartStatus::InProgress {
            block,
            confirmations,
        } => format!(
            "in progress since #{}: {}/{} signers confirmed",
            block.0,
            confirmations.len(),
            set.signers.len()
        ),
        JumpStartStatus::Done => "done".to_owned(),
    }
}

/// The dev identity (alice…judy) with this account, if any.
fn dev_name(account: &AccountId) -> Option<&'static str> {
    DEV_NAMES
        .iter()
        .copied()
        .find(|name| dev_keypair(name).account_id() == *account)
}

fn name_or_account(account: &AccountId) -> String {
    dev_name(account).map_or_else(|| account.to_string(), str::to_owned)
}

/// Prints rows under a header, columns padded to their widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) {
    if rows.is_empty() {
        println!("  (none)");
        return;
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("  {}", text.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
