//! `sigil status`: what the ledger says about the network.

use clap::Args;
use sigil_client::LedgerClient;
use sigil_client::rpc::{ConsensusInfo, LedgerApiClient as _, ProgramSummary};
use sigil_client::types::{
    JumpStartStatus, OffenceRecord, Parameters, Registration, SignerSet, ValidatorRecord,
};
use sigil_primitives::{AccountId, VerifyingKey};

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
    /// Other replicas of a replicated ledger to compare with this one (their websocket
    /// JSON-RPC URLs, comma-separated, as `sigil devnet` prints them).
    #[arg(long, value_name = "URLS", value_delimiter = ',')]
    replicas: Vec<String>,
}

/// Runs `sigil status`.
pub fn run(args: StatusArgs) -> anyhow::Result<()> {
    crate::block_on(async {
        let client = args.ledger.connect().await?;
        let status = Status::read(&args.ledger.url, &client).await?;
        let agreement = Agreement::read(&client, &args.replicas).await?;
        if args.json {
            let mut json = status.json();
            json["consensus"] = agreement.json(&status.consensus);
            println!("{json}");
            return Ok(());
        }
        status.print_summary();
        agreement.print(&status.consensus);
        status.print_validators();
        status.print_programs();
        status.print_registrations();
        status.print_offences();
        Ok(())
    })
}

/// What the ledger says about the network, read once.
struct Status<'a> {
    /// The ledger's URL, as given.
    url: &'a str,
    chain_id: &'a str,
    /// Height of the latest block.
    head: u64,
    /// How the ledger is ordered.
    consensus: ConsensusInfo,
    validators: Vec<ValidatorRecord>,
    /// Each validator's free balance, in the order of `validators`.
    balances: Vec<u64>,
    set: SignerSet,
    parameters: Parameters,
    programs: Vec<ProgramSummary>,
    registrations: Vec<(VerifyingKey, Registration)>,
    offences: Vec<OffenceRecord>,
}

impl<'a> Status<'a> {
    /// Reads everything `sigil status` shows from the ledger at `url`.
    async fn read(url: &'a str, client: &'a LedgerClient) -> anyhow::Result<Self> {
        let rpc = client.rpc();
        let validators = rpc.validators().await?;
        let mut balances = Vec::with_capacity(validators.len());
        for v in &validators {
            balances.push(rpc.account(v.account).await?.balance);
        }
        Ok(Self {
            url,
            chain_id: client.chain_id(),
            head: rpc.head().await?.height.0,
            consensus: rpc.consensus().await?,
            validators,
            balances,
            set: rpc.signer_set().await?,
            parameters: rpc.parameters().await?,
            programs: rpc.programs().await?,
            registrations: rpc.registrations(None).await?,
            offences: rpc.offences().await?,
        })
    }

    /// The whole status as one JSON object (`--json`).
    fn json(&self) -> serde_json::Value {
        let set = &self.set;
        serde_json::json!({
            "ledger": self.url,
            "chain_id": self.chain_id,
            "head": self.head,
            "validators": self.validators.iter().zip(&self.balances).map(|(v, balance)| serde_json::json!({
                "account": v.account.to_string(),
                "name": dev_name(&v.account),
                "endpoint": v.endpoint.to_string(),
                "stake": v.stake,
                "balance": balance,
                "joined": v.joined.0,
                "signer": set.signers.contains(&v.account),
            })).collect::<Vec<_>>(),
            "signer_set": set,
            "parameters": self.parameters,
            "programs": self.programs,
            "registrations": self.registrations.iter().map(|(key, r)| serde_json::json!({
                "verifying_key": key.to_string(),
                "eth_address": sigil::eth::address(key).to_checksum(None),
                "owner": r.owner.to_string(),
                "programs": r.programs,
                "derivation_path": r.derivation_path.to_string(),
                "registered": r.registered.0,
            })).collect::<Vec<_>>(),
            "offences": self.offences,
        })
    }

    /// The ledger, the jump start, the network key, the signers, a reshare and exclusions.
    fn print_summary(&self) {
        let set = &self.set;
        println!(
            "ledger       {} (chain {}, head #{})",
            self.url, self.chain_id, self.head
        );
        println!("jump start   {}", jump_start_text(set));
        for scheme in sigil_primitives::KeyScheme::ALL {
            println!(
                "network key  {} ({scheme})",
                set.network_key_of(scheme)
                    .map_or_else(|| "none yet".to_owned(), |k| k.to_string())
            );
        }
        println!(
            "signers      {}, threshold {} (next jump start or reshare: {}, threshold {})",
            set.signers.len(),
            set.threshold,
            self.parameters.signer_count,
            self.parameters.threshold
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
        let names = |accounts: &mut dyn Iterator<Item = &AccountId>| {
            accounts.map(name_or_account).collect::<Vec<_>>().join(", ")
        };
        let excluded = set.excluded_at(self.head);
        if !excluded.is_empty() {
            println!("excluded     {}", names(&mut excluded.iter()));
        }
        let disputes: Vec<String> = set
            .disputes_at(self.head)
            .map(|d| {
                let (accuser, accused) = (name_or_account(&d.accuser), name_or_account(&d.accused));
                format!("{accuser} accused {accused} (until #{})", d.until.0)
            })
            .collect();
        if !disputes.is_empty() {
            println!("disputes     {}", disputes.join("; "));
            let sidelined = set.sidelined_at(self.head);
            let sidelined = sidelined.difference(&excluded);
            println!("sitting out  {}", names(&mut sidelined.into_iter()));
        }
    }

    /// The validators table.
    fn print_validators(&self) {
        println!();
        println!("validators ({})", self.validators.len());
        let rows: Vec<Vec<String>> = self
            .validators
            .iter()
            .zip(&self.balances)
            .map(|(v, balance)| {
                vec![
                    dev_name(&v.account).unwrap_or("-").to_owned(),
                    if self.set.signers.contains(&v.account) {
                        "signer".to_owned()
                    } else {
                        "relayer".to_owned()
                    },
                    v.account.to_string(),
                    v.endpoint.to_string(),
                    v.stake.to_string(),
                    balance.to_string(),
                    format!("#{}", v.joined.0),
                ]
            })
            .collect();
        table(
            &[
                "NAME", "ROLE", "ACCOUNT", "ENDPOINT", "STAKE", "BALANCE", "JOINED",
            ],
            &rows,
        );
    }

    /// The programs table.
    fn print_programs(&self) {
        println!();
        println!("programs ({})", self.programs.len());
        let rows: Vec<Vec<String>> = self
            .programs
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
    }

    /// The registrations table.
    fn print_registrations(&self) {
        println!();
        println!("registrations ({})", self.registrations.len());
        let rows: Vec<Vec<String>> = self
            .registrations
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
    }

    /// The offences table.
    fn print_offences(&self) {
        println!();
        println!("offences ({})", self.offences.len());
        let rows: Vec<Vec<String>> = self.offences.iter().map(offence_row).collect();
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
    }
}

/// One row of the offences table.
fn offence_row(o: &OffenceRecord) -> Vec<String> {
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

/// What the replicas given with `--replicas` say, next to the ledger's: their last final
/// heights and whether they hold the same block at the highest height all have.
struct Agreement {
    /// Each replica's URL and last final height, the ledger's first.
    finals: Vec<(String, u64)>,
    /// The highest height every replica has, and whether their blocks there are equal.
    common: Option<(u64, bool)>,
}

impl Agreement {
    async fn read(ledger: &LedgerClient, urls: &[String]) -> anyhow::Result<Self> {
        let mut clients = vec![("this ledger".to_owned(), None)];
        for url in urls {
            let client = LedgerClient::connect(url)
                .await
                .map_err(|e| anyhow::anyhow!("cannot reach the replica at {url}: {e}"))?;
            clients.push((url.clone(), Some(client)));
        }
        let mut finals = Vec::new();
        for (url, client) in &clients {
            let rpc = client.as_ref().unwrap_or(ledger).rpc();
            finals.push((url.clone(), rpc.consensus().await?.final_height));
        }
        if urls.is_empty() {
            return Ok(Self {
                finals,
                common: None,
            });
        }
        let height = finals.iter().map(|(_, h)| *h).min().unwrap_or(0);
        let mut hashes = Vec::new();
        for (_, client) in &clients {
            let rpc = client.as_ref().unwrap_or(ledger).rpc();
            let block = rpc.block(height).await?;
            hashes.push(block.map(|b| sigil_ledger::header::header_hash(&b.header)));
        }
        let agree = hashes.windows(2).all(|w| w[0] == w[1]);
        Ok(Self {
            finals,
            common: Some((height, agree)),
        })
    }

    fn json(&self, info: &ConsensusInfo) -> serde_json::Value {
        serde_json::json!({
            "mode": info.mode,
            "epoch": info.epoch,
            "epoch_length": info.epoch_length,
            "next_epoch_at": info.next_epoch_at,
            "next_replicas": info.next_replicas,
            "final_height": info.final_height,
            "final_hash": info.final_hash,
            "replicas": info.replicas,
            "compared": self.finals.iter().map(|(url, h)| serde_json::json!({
                "replica": url, "final_height": h,
            })).collect::<Vec<_>>(),
            "agree": self.common.map(|(_, agree)| agree),
            "agree_at": self.common.map(|(height, _)| height),
        })
    }

    fn print(&self, info: &ConsensusInfo) {
        println!(
            "consensus    {}, epoch {}, {} replicas, final #{} ({})",
            info.mode,
            info.epoch,
            info.replicas.len(),
            info.final_height,
            info.final_hash
        );
        for replica in &info.replicas {
            println!(
                "  replica    {} at {}",
                name_or_account(&replica.account),
                replica.address
            );
        }
        if info.mode == "replicated" && info.next_replicas != info.replicas {
            let named: Vec<String> = info
                .next_replicas
                .iter()
                .map(|r| name_or_account(&r.account))
                .collect();
            println!(
                "next epoch   from #{}: {} replicas ({})",
                info.next_epoch_at,
                named.len(),
                named.join(", ")
            );
        }
        if let Some((height, agree)) = self.common {
            let finals: Vec<String> = self
                .finals
                .iter()
                .map(|(url, h)| format!("{url} #{h}"))
                .collect();
            println!("final        {}", finals.join(", "));
            let verdict = if agree {
                "yes"
            } else {
                "NO: their blocks differ"
            };
            println!("agree        {verdict} (at #{height})");
        }
    }
}
