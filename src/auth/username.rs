//! Login names compared the way the user table compares them.
//!
//! [`login_key`] is the form a login attempt is counted under by the throttle: NFKC
//! (so `ａｎｎ` and `ann` are one), lowercase (so `Ann` and `ann` are one), trimmed.

use unicode_normalization::UnicodeNormalization as _;

/// The form a login (a username or an email) is compared and counted under.
pub(crate) fn login_key(login: &str) -> String {
    login.trim().nfkc().flat_map(char::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_case_and_spaces_fold() {
        assert_eq!(login_key(" Ａｎｎ "), "ann");
        assert_eq!(login_key("ANN@Example.COM"), "ann@example.com");
    }
}
