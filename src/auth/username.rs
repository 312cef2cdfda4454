//! Usernames: one canonical form per name, and login names compared the way the
//! user table compares them.
//!
//! A username is stored in its canonical form ([`canonical_username`]): NFKC (so
//! `ａｎｎ` is `ann`), lowercase (so `Ann` is `ann`), then it must be 3 to 50 of the
//! ASCII letters, digits, `.`, `_` and `-`. Everything else is refused: zero-width
//! and bidi control characters, control characters and newlines, spaces, `@` (an
//! email is a login too), and letters outside ASCII, so that a Cyrillic `а` cannot
//! make `аlice` look like `alice`. Uniqueness holds on the canonical form, and login
//! accepts any case or width of it. [`login_key`] is the form a login attempt is
//! counted under by the throttle: NFKC, lowercase, trimmed.

use unicode_normalization::UnicodeNormalization as _;

/// The form a login (a username or an email) is compared and counted under.
pub(crate) fn login_key(login: &str) -> String {
    login.trim().nfkc().flat_map(char::to_lowercase).collect()
}

/// Shortest and longest username, in characters.
pub(crate) const USERNAME_LENGTH: std::ops::RangeInclusive<usize> = 3..=50;

/// What a valid username is, for error messages.
pub(crate) const USERNAME_RULE: &str =
    "Username must be 3 to 50 characters: letters a-z (any case, stored lowercase), digits, '.', '_' or '-'";

/// The stored form of `raw`, or `None` when it is not a valid username.
pub(crate) fn canonical_username(raw: &str) -> Option<String> {
    let canonical: String = raw.nfkc().flat_map(char::to_lowercase).collect();
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
    (USERNAME_LENGTH.contains(&canonical.len()) && canonical.chars().all(allowed)).then_some(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_fold_to_one_ascii_form_or_are_refused() {
        assert_eq!(canonical_username("Alice").as_deref(), Some("alice"));
        assert_eq!(canonical_username("ＡＬＩＣＥ").as_deref(), Some("alice"));
        assert_eq!(canonical_username("ann.lee_x-1").as_deref(), Some("ann.lee_x-1"));
        for bad in ["alice\u{200b}", "\u{430}lice", "bob\n", "ab\u{202e}cd", "a b", "al", "ann@x.io", "é-lise", ""] {
            assert_eq!(canonical_username(bad), None, "{bad:?}");
        }
        assert_eq!(canonical_username(&"a".repeat(51)), None);
    }

    #[test]
    fn width_case_and_spaces_fold() {
        assert_eq!(login_key(" Ａｎｎ "), "ann");
        assert_eq!(login_key("ANN@Example.COM"), "ann@example.com");
    }
}
