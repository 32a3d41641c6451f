//! Every error code Tallydesk answers with, the server's and the desktop's alike.
//!
//! The server's `{code, message, field?}` bodies, sync's rejected mutations and the desktop's
//! errors to its UI all carry an [`ErrorCode`]; the UI branches on it. A code, once published,
//! keeps its name: clients older than the server read a code they do not know as `internal`
//! (with the server's message), never as a failure to read the answer.

use serde::{Deserialize, Deserializer};

crate::wire_enum! {
    /// A stable, machine-readable error code (`snake_case` on the wire).
    #[derive(Hash)]
    pub enum ErrorCode / UnknownErrorCode {
        // ---- Any request ----
        /// Something failed on the server or in the app; the cause is logged, not shown.
        Internal = "internal",
        /// Missing, or not visible to the caller (the two look the same).
        NotFound = "not_found",
        /// The caller's role does not allow this.
        Forbidden = "forbidden",
        /// A field of the input is wrong; `field` names it.
        InvalidField = "invalid_field",
        /// The body is not the JSON the operation takes.
        InvalidBody = "invalid_body",
        /// A query parameter is wrong.
        InvalidQuery = "invalid_query",
        /// A path parameter is wrong (for example, not a UUID).
        InvalidPath = "invalid_path",
        /// A list cursor that this server did not hand out.
        InvalidCursor = "invalid_cursor",
        PayloadTooLarge = "payload_too_large",
        UnsupportedMediaType = "unsupported_media_type",
        /// The record changed since the caller read it: reload and try again.
        StaleVersion = "stale_version",
        /// The ticket's workflow does not allow this move from its status.
        IllegalTransition = "illegal_transition",
        /// A record with this id exists already.
        AlreadyExists = "already_exists",
        /// The request's body did not arrive within the server's deadline for it.
        RequestTimeout = "request_timeout",
        /// The server cannot take the request now: retry after `Retry-After` seconds.
        Busy = "busy",

        // ---- Sign-in and tenancy ----
        /// No bearer token.
        Unauthenticated = "unauthenticated",
        TokenMalformed = "token_malformed",
        TokenUnsupportedAlgorithm = "token_unsupported_algorithm",
        TokenUnknownIssuer = "token_unknown_issuer",
        TokenUnknownKey = "token_unknown_key",
        TokenAlgorithmMismatch = "token_algorithm_mismatch",
        TokenBadSignature = "token_bad_signature",
        TokenExpired = "token_expired",
        TokenNotYetValid = "token_not_yet_valid",
        TokenWrongAudience = "token_wrong_audience",
        TokenMissingClaim = "token_missing_claim",
        TokenInvalidClaim = "token_invalid_claim",
        /// The sign-in was ended (signed out, password changed, or a token reused).
        TokenRevoked = "token_revoked",
        /// The token's issuer could not be reached to check it.
        IssuerUnreachable = "issuer_unreachable",
        /// The token's issuer answered, but not as an OpenID provider should.
        IssuerMisconfigured = "issuer_misconfigured",
        /// The request names no tenant, and the caller belongs to several.
        TenantRequired = "tenant_required",
        /// The tenant header is not a tenant id.
        InvalidTenant = "invalid_tenant",
        /// The caller is not a member of the tenant named.
        NotAMember = "not_a_member",
        /// Signed in, but a member of no tenant yet.
        NoMembership = "no_membership",
        /// The server's own sign-in is turned off.
        BuiltinIssuerOff = "builtin_issuer_off",
        /// The account signs in with another identity provider, so it has no password here.
        NotALocalAccount = "not_a_local_account",
        /// The current password given is not the account's.
        WrongPassword = "wrong_password",
        TooManyAttempts = "too_many_attempts",
        AccountExists = "account_exists",

        // ---- Members and settings ----
        /// The last admin of a tenant cannot leave or lose the role.
        LastAdmin = "last_admin",
        AlreadyMember = "already_member",
        AlreadyInvited = "already_invited",
        /// The invitation has been accepted already, so it cannot be revoked.
        InvitationAccepted = "invitation_accepted",
        /// An SLA policy still uses the calendar.
        CalendarInUse = "calendar_in_use",

        // ---- Expenses and receipts ----
        /// A submitted expense never changes.
        ExpenseImmutable = "expense_immutable",
        /// Expenses are filed on open claims only.
        TicketClosed = "ticket_closed",
        /// Nobody approves or rejects an expense they submitted.
        OwnExpense = "own_expense",
        /// The approver approved this expense already; it waits for another approver.
        AlreadyApproved = "already_approved",
        /// An uploaded blob's bytes do not have the digest it was stored under.
        HashMismatch = "hash_mismatch",

        // ---- Sync ----
        /// The client's sync protocol is not one this server speaks.
        UnsupportedSyncProtocol = "unsupported_sync_protocol",
        TooManyMutations = "too_many_mutations",
        /// The change log was compacted past this cursor: sync from the start.
        ResyncRequired = "resync_required",

        // ---- The desktop app ----
        /// Another program holds the database file.
        DatabaseLocked = "database_locked",
        /// The database file is damaged or not a Tallydesk database.
        DatabaseCorrupt = "database_corrupt",
        /// A dropped file is not a readable receipt image; `field` says why (`pdf`, `too_large`…).
        UnreadableFile = "unreadable_file",
        /// The receipt reader could not start (its models are missing or damaged).
        OcrUnavailable = "ocr_unavailable",
        /// The Tallydesk server could not be reached (network, DNS, TLS, or it is down).
        ServerUnreachable = "server_unreachable",
        /// The address answers, but not as a Tallydesk server does.
        NotATallydeskServer = "not_a_tallydesk_server",
        /// No sign-in came back from the browser in time, or no browser could be opened.
        BrowserClosed = "browser_closed",
        /// The person cancelled the sign-in in the app.
        SignInCancelled = "sign_in_cancelled",
        /// The browser's answer was not for the sign-in this app started (`state` differs).
        StateMismatch = "state_mismatch",
        /// The answer or the ID token came from another identity provider than the one asked.
        IssuerMismatch = "issuer_mismatch",
        /// The ID token's times are far from this computer's clock.
        ClockSkew = "clock_skew",
        /// The identity provider could not be reached or answered wrongly.
        IdpUnreachable = "idp_unreachable",
        /// The person (or the identity provider) refused the sign-in.
        ConsentDenied = "consent_denied",
        /// The sign-in ran out and could not be renewed.
        SessionExpired = "session_expired",
        /// The action needs a signed-in account.
        NotSignedIn = "not_signed_in",
    }
}

impl ErrorCode {
    /// Reads a code, taking one this build does not know as [`ErrorCode::Internal`].
    pub fn parse_lenient(s: &str) -> ErrorCode {
        s.parse().unwrap_or(ErrorCode::Internal)
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(ErrorCode::parse_lenient(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_as_itself() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(
                json,
                format!("\"{}\"", code.as_str()),
                "serde and as_str agree"
            );
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), *code);
            assert_eq!(code.as_str().parse::<ErrorCode>().unwrap(), *code);
        }
    }

    #[test]
    fn a_code_from_a_newer_server_reads_as_internal_not_as_a_failure() {
        let code: ErrorCode = serde_json::from_str("\"quota_exceeded_in_2030\"").unwrap();
        assert_eq!(code, ErrorCode::Internal);
    }
}
