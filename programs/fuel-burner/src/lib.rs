//! `fuel-burner` (test program): runs the configured number of loop iterations, then allows
//! the request. Fuel use grows linearly with `iterations`, which lets tests aim at a fraction
//! of a budget.
//!
//! Configuration: `{"iterations": 100000}`.

use sigil_program::{OracleData, Request, Result, parse_config};

/// The program's configuration.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// How many times to go round the loop.
    iterations: u64,
}

/// Loops `iterations` times.
pub fn evaluate(_request: &Request, config: &[u8], _oracle: &OracleData) -> Result {
    let config: Config = parse_config(config)?;
    let mut acc = 0u64;
    for i in 0..config.iterations {
        // `black_box` stops the loop from being replaced by a closed form.
        acc = std::hint::black_box(acc.wrapping_mul(31).wrapping_add(i));
    }
    std::hint::black_box(acc);
    Ok(())
}

sigil_program::export_program!(evaluate);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs() {
        let request = Request::default();
        assert_eq!(
            evaluate(&request, br#"{"iterations":10}"#, &OracleData::default()),
            Ok(())
        );
    }
}
