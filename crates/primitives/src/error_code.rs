//! Every error code the node's HTTP API answers with (`docs/PROTOCOL.md` §7.6), its HTTP
//! status and whether another committee could succeed where this one failed.

use serde::{Deserialize, Serialize};

/// Declares [`ErrorCode`] from one table: variant, wire name, HTTP status.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $name:literal, $status:literal;)*) => {
        /// A stable error code: `{"error": {"code": "<name>", …}}` on the wire.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
            /// A code this build does not know (a newer peer's); never sent.
            #[serde(other)]
            Unknown,
        }

        impl ErrorCode {
            /// Every code this build sends.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The snake_case name on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                    Self::Unknown => "unknown",
                }
            }

            /// The HTTP status the node answers this code with.
            pub fn status(self) -> u16 {
                match self {
                    $(Self::$variant => $status,)*
                    Self::Unknown => 502,
                }
            }
        }
    };
}

error_codes! {
    /// The envelope's version byte is not supported.
    UnsupportedVersion = "unsupported_version", 400;
    /// The envelope was sealed to another node.
    WrongRecipient = "wrong_recipient", 400;
    /// The envelope does not decrypt.
    DecryptionFailed = "decryption_failed", 400;
    /// The body is not an envelope, or the envelope's plaintext is malformed.
    MalformedEnvelope = "malformed_envelope", 400;
    /// The sender's signature does not verify.
    BadSignature = "bad_signature", 401;
    /// The signed recipient key is not the key of the node that received (or forwarded) it.
    RecipientMismatch = "recipient_mismatch", 400;
    /// The envelope comes from another sender than expected.
    UnexpectedSender = "unexpected_sender", 400;
    /// The envelope (or the user's request inside a forwarded one) is too old.
    Expired = "expired", 400;
    /// The envelope's timestamp is too far ahead of this node's clock.
    FromTheFuture = "from_the_future", 400;
    /// The body or the envelope's payload is over its limit.
    PayloadTooLarge = "payload_too_large", 413;
    /// The body could not be read.
    BadRequest = "bad_request", 400;
    /// A POST body that is not declared as JSON.
    UnsupportedMediaType = "unsupported_media_type", 415;
    /// The request payload does not decode.
    MalformedRequest = "malformed_request", 400;
    /// The message is over the signable limit.
    MessageTooLarge = "message_too_large", 413;
    /// The request's block is ahead of the head or unknown.
    UnknownBlock = "unknown_block", 400;
    /// The request's block is older than the request window.
    StaleBlock = "stale_block", 400;
    /// The verifying key is not registered.
    UnregisteredKey = "unregistered_key", 404;
    /// The requester is neither the key's owner nor an account it authorised, and the key is
    /// not public.
    NotAuthorised = "not_authorised", 403;
    /// The request carries another number of auxiliary data items than the key has programs.
    AuxDataMismatch = "aux_data_mismatch", 400;
    /// `custom:N` names no program of the key.
    BadHashIndex = "bad_hash_index", 400;
    /// The message does not fit the hashing algorithm (`identity` needs 32 bytes).
    BadMessageForHash = "bad_message_for_hash", 400;
    /// A program refused the request.
    ProgramDenied = "program_denied", 403;
    /// A program ran out of fuel.
    ProgramOutOfFuel = "program_out_of_fuel", 403;
    /// A program trapped.
    ProgramTrap = "program_trap", 403;
    /// A program rejected the request's auxiliary data.
    ProgramInvalidAuxData = "program_invalid_aux_data", 403;
    /// A program rejected its configuration.
    ProgramInvalidConfig = "program_invalid_config", 403;
    /// A program exceeded its memory limit.
    ProgramMemoryLimit = "program_memory_limit", 403;
    /// A stored program's bytecode is not a valid component.
    ProgramInvalidBytecode = "program_invalid_bytecode", 403;
    /// A program imports something the host does not provide.
    ProgramForbiddenImport = "program_forbidden_import", 403;
    /// A program lacks an export the request needs.
    ProgramMissingExport = "program_missing_export", 403;
    /// A program's export has the wrong type.
    ProgramBadExportType = "program_bad_export_type", 403;
    /// A program could not be instantiated.
    ProgramInstantiation = "program_instantiation", 403;
    /// A program's custom hash did not return 32 bytes.
    ProgramBadCustomHash = "program_bad_custom_hash", 403;
    /// A signer was asked to relay.
    NotARelayer = "not_a_relayer", 403;
    /// The caller of `/v1/sign` is not a validator.
    NotAValidator = "not_a_validator", 403;
    /// This node is not a signer.
    NotASigner = "not_a_signer", 403;
    /// This node is not in the request's committee.
    NotInCommittee = "not_in_committee", 403;
    /// The named committee or exclusions are not what the ledger selects.
    WrongCommittee = "wrong_committee", 403;
    /// The relayer's session ticket does not verify.
    BadTicket = "bad_ticket", 400;
    /// The request (or session) was already received.
    Replayed = "replayed", 409;
    /// The key (or requester) reached its limit for the block.
    RateLimited = "rate_limited", 429;
    /// No request with that id is kept.
    UnknownRequest = "unknown_request", 404;
    /// The request id in the path is malformed.
    BadRequestId = "bad_request_id", 400;
    /// `/v1/ws` was called without a websocket upgrade.
    NotAWebsocket = "not_a_websocket", 400;
    /// No such route.
    NotFound = "not_found", 404;
    /// The route exists, but not for this HTTP method.
    MethodNotAllowed = "method_not_allowed", 405;
    /// The body is not the JSON expected.
    BadJson = "bad_json", 400;
    /// Fault-injection builds: the fault named is not one.
    BadFault = "bad_fault", 400;
    /// The node cannot serve yet (not following the ledger, no share of the current key).
    NotReady = "not_ready", 503;
    /// Fewer eligible signers than the threshold.
    NoCommittee = "no_committee", 503;
    /// The ledger could not be read.
    LedgerUnavailable = "ledger_unavailable", 502;
    /// A committee member could not be reached.
    SignerUnreachable = "signer_unreachable", 502;
    /// A committee member's answer is not valid.
    BadSignerAnswer = "bad_signer_answer", 502;
    /// The threshold signing session failed.
    SigningFailed = "signing_failed", 502;
    /// A nonce named for one-round signing is not this signer's unused nonce of the current
    /// epoch for that relayer.
    NonceRefused = "nonce_refused", 502;
    /// Metrics could not be rendered.
    MetricsUnavailable = "metrics_unavailable", 503;
    /// Something failed on this node.
    Internal = "internal", 500;
    /// Too many connections or handshakes from this address, or in total: retry later.
    Busy = "busy", 503;
}

impl ErrorCode {
    /// Whether the failure lies with the servers (a session failed, a member is unreachable
    /// or not ready), so another committee may succeed; a refusal of the request itself
    /// would be repeated by every committee. A code this build does not know counts as the
    /// node's failure.
    pub fn is_server_side(self) -> bool {
        match self {
            Self::NotReady
            | Self::NoCommittee
            | Self::LedgerUnavailable
            | Self::SignerUnreachable
            | Self::BadSignerAnswer
            | Self::SigningFailed
            | Self::NonceRefused
            | Self::MetricsUnavailable
            | Self::Busy
            | Self::Internal
            | Self::Unknown => true,
            Self::UnsupportedVersion
            | Self::WrongRecipient
            | Self::DecryptionFailed
            | Self::MalformedEnvelope
            | Self::BadSignature
            | Self::RecipientMismatch
            | Self::UnexpectedSender
            | Self::Expired
            | Self::FromTheFuture
            | Self::PayloadTooLarge
            | Self::BadRequest
            | Self::UnsupportedMediaType
            | Self::MalformedRequest
            | Self::MessageTooLarge
            | Self::UnknownBlock
            | Self::StaleBlock
            | Self::UnregisteredKey
            | Self::NotAuthorised
            | Self::AuxDataMismatch
            | Self::BadHashIndex
            | Self::BadMessageForHash
            | Self::ProgramDenied
            | Self::ProgramOutOfFuel
            | Self::ProgramTrap
            | Self::ProgramInvalidAuxData
            | Self::ProgramInvalidConfig
            | Self::ProgramMemoryLimit
            | Self::ProgramInvalidBytecode
            | Self::ProgramForbiddenImport
            | Self::ProgramMissingExport
            | Self::ProgramBadExportType
            | Self::ProgramInstantiation
            | Self::ProgramBadCustomHash
            | Self::NotARelayer
            | Self::NotAValidator
            | Self::NotASigner
            | Self::NotInCommittee
            | Self::WrongCommittee
            | Self::BadTicket
            | Self::Replayed
            | Self::RateLimited
            | Self::UnknownRequest
            | Self::BadRequestId
            | Self::NotAWebsocket
            | Self::NotFound
            | Self::MethodNotAllowed
            | Self::BadJson
            | Self::BadFault => false,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip_through_json() {
        let mut seen = std::collections::BTreeSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), *code);
        }
    }

    #[test]
    fn unknown_names_decode_as_unknown() {
        let code: ErrorCode = serde_json::from_str("\"added_next_year\"").unwrap();
        assert_eq!(code, ErrorCode::Unknown);
    }

    #[test]
    fn statuses_are_errors_and_only_server_faults_retry() {
        for code in ErrorCode::ALL {
            assert!((400..600).contains(&code.status()), "{code}");
            assert_eq!(code.is_server_side(), code.status() >= 500, "{code}");
        }
        assert!(ErrorCode::SigningFailed.is_server_side());
        assert!(ErrorCode::SignerUnreachable.is_server_side());
        assert!(!ErrorCode::RateLimited.is_server_side());
        assert!(!ErrorCode::ProgramDenied.is_server_side());
        assert!(ErrorCode::Unknown.is_server_side());
    }

    /// PROTOCOL.md §7.6 lists every code with its status, so clients written from it agree.
    #[test]
    fn the_protocol_lists_every_code_with_its_status() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/PROTOCOL.md");
        let text = std::fs::read_to_string(path).expect("docs/PROTOCOL.md");
        let section = text
            .split("### 7.6 Errors")
            .nth(1)
            .and_then(|rest| rest.split("\n### ").next())
            .expect("§7.6");
        for code in ErrorCode::ALL {
            let row = format!("| `{} {}` |", code.status(), code.as_str());
            assert!(section.contains(&row), "§7.6 lacks {row}");
        }
        let rows = section.lines().filter(|l| l.starts_with("| `")).count();
        assert_eq!(
            rows,
            ErrorCode::ALL.len(),
            "§7.6 lists a code the node never sends"
        );
    }
}
