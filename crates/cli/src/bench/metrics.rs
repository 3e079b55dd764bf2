//! The validators' own Prometheus metrics, read before and after a run: handshakes, and where a
//! signature's time goes on the network path (checks, programs, each engine round's CPU and
//! waiting).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::load::round;

/// Every series of every scraped validator, summed over validators.
#[derive(Debug, Default, Clone)]
pub struct Metrics(BTreeMap<String, f64>);

/// Where one signature's time went on a signer, averaged over the run's signatures and signers.
#[derive(Debug, Serialize)]
pub struct NetProfile {
    /// Opening the envelope, ledger reads, programs and committee checks before the session.
    pub checks_ms: Option<f64>,
    /// One program evaluation (relayer and signers).
    pub program_ms: Option<f64>,
    /// The signing session, from opening it to the verified signature.
    pub session_ms: Option<f64>,
    /// The session's rounds in order.
    pub rounds: Vec<RoundCost>,
}

/// One engine round's mean cost to one signer.
#[derive(Debug, Serialize)]
pub struct RoundCost {
    /// manul's name for it.
    pub round: String,
    /// CPU time.
    pub cpu_ms: f64,
    /// Time blocked on the network with no own work running.
    pub wait_ms: f64,
    /// Wall time.
    pub wall_ms: f64,
}

impl Metrics {
    /// Reads `/metrics` of every validator at `endpoints`; `None` if one cannot be read.
    pub async fn scrape(endpoints: &[String]) -> Option<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .ok()?;
        let mut all = BTreeMap::new();
        for endpoint in endpoints {
            let text = http
                .get(format!("http://{endpoint}/metrics"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            for line in text.lines().filter(|l| !l.starts_with('#')) {
                if let Some((series, value)) = line.rsplit_once(' ')
                    && let Ok(value) = value.parse::<f64>()
                {
                    *all.entry(series.to_owned()).or_insert(0.0) += value;
                }
            }
        }
        Some(Self(all))
    }

    /// What grew between `before` and `self`.
    pub fn since(&self, before: &Self) -> Self {
        Self(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), v - before.0.get(k).copied().unwrap_or(0.0)))
                .collect(),
        )
    }

    /// Validator connections opened (successful handshakes, counted at the dialling side).
    pub fn handshakes(&self) -> u64 {
        self.0
            .iter()
            .filter(|(k, _)| {
                k.starts_with("sigil_transport_handshakes_total{")
                    && k.contains(r#"role="initiator""#)
                    && k.contains(r#"result="ok""#)
            })
            .map(|(_, v)| *v)
            .sum::<f64>()
            .round() as u64
    }

    /// Mean of a histogram (`NAME_sum` over `NAME_count`, `labels` like `{a="b"}` or empty), in
    /// milliseconds.
    fn mean_ms(&self, name: &str, labels: &str) -> Option<f64> {
        let sum = self.0.get(&format!("{name}_sum{labels}"))?;
        let count = self.0.get(&format!("{name}_count{labels}"))?;
        (*count > 0.0).then(|| round(sum / count * 1e3))
    }

    /// The signers' profile of the signatures between two scrapes.
    pub fn profile(&self) -> NetProfile {
        const ROUND: &str = "sigil_node_sign_round_seconds";
        let mut names: Vec<String> = self
            .0
            .keys()
            .filter(|k| k.starts_with(&format!("{ROUND}_count{{")))
            .filter_map(|k| label(k, "round"))
            .collect();
        names.sort();
        names.dedup();
        let part = |round: &str, part: &str| {
            // The exporter writes labels in the order they were given: round, then part.
            self.mean_ms(ROUND, &format!(r#"{{round="{round}",part="{part}"}}"#))
        };
        NetProfile {
            checks_ms: self.mean_ms("sigil_node_sign_checks_seconds", ""),
            program_ms: self.mean_ms("sigil_node_program_seconds", ""),
            // The ECDSA path's sessions: the FROST schemes' are measured on their own.
            session_ms: self.mean_ms(
                "sigil_node_signing_seconds",
                r#"{scheme="ecdsa-secp256k1"}"#,
            ),
            rounds: names
                .into_iter()
                .filter_map(|round| {
                    Some(RoundCost {
                        cpu_ms: part(&round, "cpu")?,
                        wait_ms: part(&round, "wait")?,
                        wall_ms: part(&round, "wall")?,
                        round,
                    })
                })
                .collect(),
        }
    }
}

/// The value of `key="…"` in a series' labels.
fn label(series: &str, key: &str) -> Option<String> {
    let start = series.find(&format!("{key}=\""))? + key.len() + 2;
    let len = series[start..].find('"')?;
    Some(series[start..start + len].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_and_handshakes_from_exporter_text() {
        let mut before = Metrics::default();
        before.0.insert(
            r#"sigil_transport_handshakes_total{role="initiator",result="ok"}"#.into(),
            2.0,
        );
        let mut after = before.clone();
        for (k, v) in [
            (
                r#"sigil_transport_handshakes_total{role="initiator",result="ok"}"#,
                5.0,
            ),
            (
                r#"sigil_transport_handshakes_total{role="responder",result="ok"}"#,
                3.0,
            ),
            (
                r#"sigil_node_sign_round_seconds_sum{round="Round 1",part="cpu"}"#,
                0.4,
            ),
            (
                r#"sigil_node_sign_round_seconds_count{round="Round 1",part="cpu"}"#,
                2.0,
            ),
            (
                r#"sigil_node_sign_round_seconds_sum{round="Round 1",part="wait"}"#,
                0.1,
            ),
            (
                r#"sigil_node_sign_round_seconds_count{round="Round 1",part="wait"}"#,
                2.0,
            ),
            (
                r#"sigil_node_sign_round_seconds_sum{round="Round 1",part="wall"}"#,
                0.6,
            ),
            (
                r#"sigil_node_sign_round_seconds_count{round="Round 1",part="wall"}"#,
                2.0,
            ),
            (
                r#"sigil_node_signing_seconds_sum{scheme="ecdsa-secp256k1"}"#,
                3.0,
            ),
            (
                r#"sigil_node_signing_seconds_count{scheme="ecdsa-secp256k1"}"#,
                2.0,
            ),
            (r#"sigil_node_signing_seconds_sum{scheme="ed25519"}"#, 0.01),
            (r#"sigil_node_signing_seconds_count{scheme="ed25519"}"#, 1.0),
        ] {
            after.0.insert(k.into(), v);
        }
        let run = after.since(&before);
        assert_eq!(run.handshakes(), 3);
        let p = run.profile();
        assert_eq!(p.session_ms, Some(1500.0));
        assert_eq!(p.checks_ms, None);
        assert_eq!(p.rounds.len(), 1);
        assert_eq!(
            (p.rounds[0].cpu_ms, p.rounds[0].wait_ms, p.rounds[0].wall_ms),
            (200.0, 50.0, 300.0)
        );
    }
}
