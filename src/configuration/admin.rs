//! The admin token: long enough not to be guessed, and never a placeholder left in place.

use secrecy::{ExposeSecret, SecretString};

use super::error::{ConfigError, invalid};

/// 32 characters of a random alphabet: `openssl rand -hex 16` at the least.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// The placeholders of the deployment kit and the docs; any value holding one of these (in any
/// case) was meant to be replaced.
const PLACEHOLDERS: [&str; 4] = ["REPLACE_WITH", "CHANGE_ME", "CHANGEME", "YOUR_TOKEN"];

/// None disables the admin endpoints; a set token must be at least `MIN_ADMIN_TOKEN_CHARS`
/// visible ASCII characters (a header cannot carry others reliably) and no placeholder. The
/// message never repeats the token.
pub fn admin_token(token: Option<SecretString>) -> Result<Option<SecretString>, ConfigError> {
    let Some(token) = token else {
        return Ok(None);
    };
    let text = token.expose_secret();
    let problem = if text.is_empty() {
        "is empty: unset it to disable the admin endpoints".to_owned()
    } else if !text.bytes().all(|b| b.is_ascii_graphic()) {
        "holds a space, a control or a non-ASCII character: use visible ASCII only (e.g. \
         `openssl rand -hex 32`)"
            .to_owned()
    } else if text.len() < MIN_ADMIN_TOKEN_CHARS {
        format!(
            "is {} characters long: use at least {MIN_ADMIN_TOKEN_CHARS} random ones (e.g. \
             `openssl rand -hex 32`)",
            text.len()
        )
    } else if PLACEHOLDERS
        .iter()
        .any(|p| text.to_ascii_uppercase().contains(p))
    {
        "is the example's placeholder: replace it with a random token (e.g. `openssl rand -hex \
         32`)"
            .to_owned()
    } else {
        return Ok(Some(token));
    };
    Err(invalid("admin_token", problem))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(token: &str) -> String {
        admin_token(Some(token.into())).unwrap_err().to_string()
    }

    #[test]
    fn weak_tokens_and_placeholders_are_refused_without_being_shown() {
        let long = "x".repeat(MIN_ADMIN_TOKEN_CHARS);
        for token in [
            "",
            "a",
            "1234",
            &long[1..],
            "REPLACE_WITH_A_LONG_RANDOM_STRING",
            "replace_with_a_long_random_string",
            "apiv3_REPLACE_WITH_YOUR_TOKEN_0123456789",
            &format!("{long} "),
            &format!(" {long}"),
            &format!("{long}\n"),
            &format!("{}é", &long[1..]),
            &format!("{}\t{}", &long[..16], &long[..16]),
        ] {
            let message = refusal(token);
            assert!(
                message.starts_with("configuration key `admin_token`: "),
                "{token:?}: {message}"
            );
            assert!(!message.contains('\n'), "{message}");
            if token.len() > 1 {
                assert!(!message.contains(token.trim()), "{message} shows the token");
            }
        }
    }

    #[test]
    fn long_random_tokens_and_no_token_are_accepted() {
        assert!(admin_token(None).unwrap().is_none());
        for token in [
            "0123456789abcdef0123456789abcdef",
            "k7P+/qZ2=Zr!x~9Lm@#$%^&*()_-[]{};:,.<>?",
        ] {
            let accepted = admin_token(Some(token.into())).unwrap().unwrap();
            assert_eq!(accepted.expose_secret(), token);
        }
    }
}
