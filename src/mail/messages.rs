//! Every message the site sends, one function each, rendered from a plain-text and an HTML
//! askama template under `templates/mail/` (the two parts of a multipart/alternative message).
//! Add a message here: a pair of templates, a pair of structs, one function.

use askama::Template;

use super::Message;

fn render(to: &str, subject: &str, text: &impl Template, html: &impl Template) -> anyhow::Result<Message> {
    Ok(Message {
        to: to.to_owned(),
        subject: subject.to_owned(),
        text: text
            .render()
            .map_err(|error| anyhow::anyhow!("mail template: {error}"))?,
        html: html
            .render()
            .map_err(|error| anyhow::anyhow!("mail template: {error}"))?,
    })
}

#[derive(Template)]
#[template(path = "mail/verify_email.txt")]
struct VerifyEmailText<'a> {
    link: &'a str,
    hours: u64,
}

#[derive(Template)]
#[template(path = "mail/verify_email.html")]
struct VerifyEmailHtml<'a> {
    link: &'a str,
    hours: u64,
}

/// After sign-up (and on "send the link again"): the link that verifies the address.
pub fn verify_email(to: &str, link: &str, hours: u64) -> anyhow::Result<Message> {
    render(
        to,
        "Confirm your email address",
        &VerifyEmailText { link, hours },
        &VerifyEmailHtml { link, hours },
    )
}

#[derive(Template)]
#[template(path = "mail/password_reset.txt")]
struct PasswordResetText<'a> {
    link: &'a str,
    minutes: u64,
    after_report: bool,
}

#[derive(Template)]
#[template(path = "mail/password_reset.html")]
struct PasswordResetHtml<'a> {
    link: &'a str,
    minutes: u64,
    after_report: bool,
}

/// The single-use link that sets a new password; `after_report` when it follows "this wasn't me".
pub fn password_reset(to: &str, link: &str, minutes: u64, after_report: bool) -> anyhow::Result<Message> {
    let subject = if after_report {
        "Your account was secured: set a new password"
    } else {
        "Reset your password"
    };
    render(
        to,
        subject,
        &PasswordResetText {
            link,
            minutes,
            after_report,
        },
        &PasswordResetHtml {
            link,
            minutes,
            after_report,
        },
    )
}

#[derive(Template)]
#[template(path = "mail/no_account.txt")]
struct NoAccountText<'a> {
    email: &'a str,
    register_link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/no_account.html")]
struct NoAccountHtml<'a> {
    email: &'a str,
    register_link: &'a str,
}

/// A reset was asked for an address without an account: its owner is told so (the page that
/// asked says the same thing whether or not there is one).
pub fn no_account(to: &str, register_link: &str) -> anyhow::Result<Message> {
    render(
        to,
        "Reset your password",
        &NoAccountText {
            email: to,
            register_link,
        },
        &NoAccountHtml {
            email: to,
            register_link,
        },
    )
}

/// What a new-sign-in message says about the log-in.
pub struct SignIn<'a> {
    pub device: &'a str,
    pub place: &'a str,
    pub when: &'a str,
    pub kind: &'a str,
    pub not_me_link: &'a str,
    pub dashboard_link: &'a str,
    pub hours: u64,
}

#[derive(Template)]
#[template(path = "mail/new_sign_in.txt")]
struct NewSignInText<'a> {
    sign_in: &'a SignIn<'a>,
}

#[derive(Template)]
#[template(path = "mail/new_sign_in.html")]
struct NewSignInHtml<'a> {
    sign_in: &'a SignIn<'a>,
}

/// A log-in from a browser/OS and address pair the account had not used together.
pub fn new_sign_in(to: &str, sign_in: &SignIn<'_>) -> anyhow::Result<Message> {
    render(
        to,
        &format!("New sign-in: {}", sign_in.device),
        &NewSignInText { sign_in },
        &NewSignInHtml { sign_in },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_html_part_escapes_what_the_text_part_shows_as_is() {
        let sign_in = SignIn {
            device: "<script>Firefox</script> on Linux",
            place: "Linköping, Sweden",
            when: "2026-12-01 10:00:00 UTC",
            kind: "browser session",
            not_me_link: "https://example.com/not-me?token=abc",
            dashboard_link: "https://example.com/dashboard",
            hours: 72,
        };
        let message = new_sign_in("a@example.com", &sign_in).unwrap();
        assert!(message.text.contains("<script>Firefox</script> on Linux"));
        assert!(!message.html.contains("<script>"));
        assert!(message.html.contains("Firefox") && message.html.contains("script&"));
        assert!(message.text.contains("https://example.com/not-me?token=abc"));
        assert!(message.html.contains("https://example.com/not-me?token=abc"));
    }
}

/// What `second_factor_changed` says: which way, when, from where.
/// What happened to the account's two-step verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    TurnedOn,
    TurnedOff,
    /// New recovery codes replaced the earlier ones.
    RecoveryCodesReplaced,
}

pub struct SecondFactorChange<'a> {
    pub change: Change,
    pub when: &'a str,
    pub device: &'a str,
    pub ip: &'a str,
    pub reset_link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/second_factor_changed.txt")]
struct SecondFactorChangedText<'a> {
    change: Change,
    when: &'a str,
    device: &'a str,
    ip: &'a str,
    reset_link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/second_factor_changed.html")]
struct SecondFactorChangedHtml<'a> {
    change: Change,
    when: &'a str,
    device: &'a str,
    ip: &'a str,
    reset_link: &'a str,
}

/// Two-step verification was turned on or off, or its recovery codes replaced: told out of
/// band, as a password change would be.
pub fn second_factor_changed(to: &str, change: &SecondFactorChange<'_>) -> anyhow::Result<Message> {
    let subject = match change.change {
        Change::TurnedOn => "Two-step verification turned on",
        Change::TurnedOff => "Two-step verification turned off",
        Change::RecoveryCodesReplaced => "New recovery codes for two-step verification",
    };
    let SecondFactorChange {
        change,
        when,
        device,
        ip,
        reset_link,
    } = *change;
    render(
        to,
        subject,
        &SecondFactorChangedText {
            change,
            when,
            device,
            ip,
            reset_link,
        },
        &SecondFactorChangedHtml {
            change,
            when,
            device,
            ip,
            reset_link,
        },
    )
}
