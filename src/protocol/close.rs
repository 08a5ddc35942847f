//! Close codes: how the server ends a socket, and what each code tells the client.
//!
//! The table in `docs/protocol.md` mirrors [`CloseCode`]. Codes in the 4000s are
//! roomgate's own.

/// Close codes the server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// 1003: a binary frame arrived; protocol v1 is text only.
    Unsupported,
    /// 1008: the socket kept sending over its rate limit (`room::rate`).
    PolicyViolation,
    /// 1009: a frame was larger than the room's frame limit.
    TooBig,
    /// 1011: the server failed while handling this socket's frame.
    ServerError,
    /// 4001: the socket's token expired (plus the clock leeway) without a `refresh`.
    TokenExpired,
    /// 4003: an admin removed this user from the room.
    Kicked,
    /// 4003: the socket's token or user was revoked.
    Revoked,
    /// 4003: the user's room grants changed and no longer include this room.
    Forbidden,
}

impl CloseCode {
    pub fn code(self) -> u16 {
        match self {
            Self::Unsupported => 1003,
            Self::PolicyViolation => 1008,
            Self::TooBig => 1009,
            Self::ServerError => 1011,
            Self::TokenExpired => 4001,
            Self::Kicked | Self::Revoked | Self::Forbidden => 4003,
        }
    }

    /// Close reasons are short, fixed strings: the close frame's reason has a 123-byte cap.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Unsupported => "binary frames are not supported",
            Self::PolicyViolation => "rate limit exceeded",
            Self::TooBig => "frame too large",
            Self::ServerError => "internal error",
            Self::TokenExpired => "token_expired",
            Self::Kicked => "kicked",
            Self::Revoked => "revoked",
            Self::Forbidden => "forbidden",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes() {
        let cases = [
            (
                CloseCode::Unsupported,
                1003,
                "binary frames are not supported",
            ),
            (CloseCode::PolicyViolation, 1008, "rate limit exceeded"),
            (CloseCode::TooBig, 1009, "frame too large"),
            (CloseCode::ServerError, 1011, "internal error"),
            (CloseCode::TokenExpired, 4001, "token_expired"),
            (CloseCode::Kicked, 4003, "kicked"),
            (CloseCode::Revoked, 4003, "revoked"),
            (CloseCode::Forbidden, 4003, "forbidden"),
        ];
        for (c, code, reason) in cases {
            assert_eq!((c.code(), c.reason()), (code, reason), "{c:?}");
            assert!(c.reason().len() <= 123);
        }
    }
}
