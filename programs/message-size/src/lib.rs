//! `message-size`: denies messages longer than the configured number of bytes.
//!
//! Configuration: `{"max_length": 1024}`.

use sigil_program::{OracleData, Request, Result, ensure, parse_config};

/// The program's configuration.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Longest message allowed, in bytes.
    max_length: usize,
}

/// Allows the request if the message is at most `max_length` bytes.
pub fn evaluate(request: &Request, config: &[u8], _oracle: &OracleData) -> Result {
    let config: Config = parse_config(config)?;
    ensure!(
        request.message.len() <= config.max_length,
        "message is {} bytes; at most {} are allowed",
        request.message.len(),
        config.max_length
    );
    Ok(())
}

sigil_program::export_program!(evaluate);

#[cfg(test)]
mod tests {
    use super::*;
    use sigil_program::Error;

    fn run(len: usize, config: &str) -> Result {
        let request = Request {
            message: vec![0; len],
            aux_data: vec![],
        };
        evaluate(&request, config.as_bytes(), &OracleData::default())
    }

    #[test]
    fn allows_up_to_the_limit() {
        assert_eq!(run(0, r#"{"max_length":4}"#), Ok(()));
        assert_eq!(run(4, r#"{"max_length":4}"#), Ok(()));
    }

    #[test]
    fn denies_longer_messages() {
        assert!(matches!(
            run(5, r#"{"max_length":4}"#),
            Err(Error::Denied(_))
        ));
    }

    #[test]
    fn rejects_bad_config() {
        assert!(matches!(
            run(1, r#"{"max":4}"#),
            Err(Error::InvalidConfig(_))
        ));
        assert!(matches!(run(1, "not json"), Err(Error::InvalidConfig(_))));
    }
}
