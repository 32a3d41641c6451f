//! The issuer's HTML pages: sign-in, invitation, messages. Plain HTML forms that work without
//! JavaScript, labelled fields, errors announced to screen readers, light and dark themes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const STYLE: &str = r#"
:root { color-scheme: light dark; --bg: #f5f6f8; --card: #ffffff; --text: #1b1f24;
  --muted: #57606a; --border: #c9d1d9; --accent: #0b5cad; --accent-text: #ffffff;
  --error-bg: #fdecea; --error: #8a1c12; }
@media (prefers-color-scheme: dark) { :root { --bg: #0f1216; --card: #1a1f26; --text: #e6edf3;
  --muted: #9da7b3; --border: #3b444f; --accent: #4c9be8; --accent-text: #0f1216;
  --error-bg: #3a1512; --error: #ffb4a9; } }
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; display: grid; place-items: center; background: var(--bg);
  color: var(--text); font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; }
main { width: min(26rem, 100% - 2rem); background: var(--card); border: 1px solid var(--border);
  border-radius: 12px; padding: 2rem; margin: 2rem 0; }
h1 { font-size: 1.4rem; margin: 0 0 0.25rem; }
p { margin: 0.5rem 0 1rem; color: var(--muted); }
label { display: block; font-weight: 600; margin: 1rem 0 0.25rem; }
input { width: 100%; padding: 0.6rem 0.7rem; font: inherit; color: inherit; background: transparent;
  border: 1px solid var(--border); border-radius: 6px; }
input:focus-visible, button:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.actions { display: flex; gap: 0.75rem; margin-top: 1.5rem; }
button { flex: 1; padding: 0.65rem; font: inherit; font-weight: 600; border-radius: 6px;
  cursor: pointer; border: 1px solid var(--border); background: transparent; color: inherit; }
button.primary { background: var(--accent); color: var(--accent-text); border-color: var(--accent); }
.error { background: var(--error-bg); color: var(--error); border-radius: 6px; padding: 0.6rem 0.8rem; }
"#;

/// Escapes text for HTML content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `body` (already HTML).
pub fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <title>{title} – Tallydesk</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n",
        title = escape(title),
    )
}

/// An HTML response that is never cached or framed.
pub fn html(status: StatusCode, page: String) -> Response {
    let mut response = (status, page).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// A page that only says something: an error or a confirmation.
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    html(
        status,
        document(
            title,
            &format!(
                "<h1>{}</h1>\n<p{}>{}</p>",
                escape(title),
                if status.is_success() {
                    ""
                } else {
                    " role=\"alert\""
                },
                escape(text)
            ),
        ),
    )
}

fn error_block(error: Option<&str>) -> String {
    match error {
        Some(error) => format!(
            "<p class=\"error\" role=\"alert\" id=\"form-error\">{}</p>\n",
            escape(error)
        ),
        None => String::new(),
    }
}

fn described(error: Option<&str>) -> &'static str {
    if error.is_some() {
        " aria-describedby=\"form-error\" aria-invalid=\"true\""
    } else {
        ""
    }
}

/// The sign-in form of an authorization request.
pub fn login(interaction: &str, email: &str, error: Option<&str>) -> String {
    let body = format!(
        "<h1>Sign in to Tallydesk</h1>\n<p>Use your Tallydesk account.</p>\n{error_block}\
         <form method=\"post\" action=\"login\">\n\
         <input type=\"hidden\" name=\"interaction\" value=\"{interaction}\">\n\
         <label for=\"email\">Email</label>\n\
         <input id=\"email\" name=\"email\" type=\"email\" value=\"{email}\" autocomplete=\"username\" required{autofocus_email}{described}>\n\
         <label for=\"password\">Password</label>\n\
         <input id=\"password\" name=\"password\" type=\"password\" value=\"\" autocomplete=\"current-password\" required{autofocus_password}{described}>\n\
         <div class=\"actions\">\n\
         <button type=\"submit\" class=\"primary\" name=\"action\" value=\"sign_in\">Sign in</button>\n\
         <button type=\"submit\" name=\"action\" value=\"cancel\" formnovalidate>Cancel</button>\n\
         </div>\n</form>",
        error_block = error_block(error),
        interaction = escape(interaction),
        email = escape(email),
        autofocus_email = if email.is_empty() { " autofocus" } else { "" },
        autofocus_password = if email.is_empty() { "" } else { " autofocus" },
        described = described(error),
    );
    document("Sign in", &body)
}

/// The invitation page for someone without an account: choose a name and a password.
pub fn invitation_new_account(
    tenant: &str,
    email: &str,
    name: &str,
    error: Option<&str>,
) -> String {
    let body = format!(
        "<h1>Join {tenant}</h1>\n<p>You are invited as <strong>{email}</strong>. Choose your name and a password \
         (at least {min} characters) for your Tallydesk account.</p>\n{error_block}\
         <form method=\"post\">\n\
         <label for=\"name\">Your name</label>\n\
         <input id=\"name\" name=\"name\" type=\"text\" value=\"{name}\" autocomplete=\"name\" required maxlength=\"200\"{described}>\n\
         <label for=\"password\">Password</label>\n\
         <input id=\"password\" name=\"password\" type=\"password\" value=\"\" autocomplete=\"new-password\" required minlength=\"{min}\"{described}>\n\
         <label for=\"password_again\">Password again</label>\n\
         <input id=\"password_again\" name=\"password_again\" type=\"password\" value=\"\" autocomplete=\"new-password\" required minlength=\"{min}\"{described}>\n\
         <div class=\"actions\">\n<button type=\"submit\" class=\"primary\">Create account and join</button>\n</div>\n</form>",
        tenant = escape(tenant),
        email = escape(email),
        name = escape(name),
        min = super::password::MIN_LEN,
        error_block = error_block(error),
        described = described(error),
    );
    document("Accept invitation", &body)
}

/// The invitation page for someone who has an account: confirm with the password.
pub fn invitation_existing_account(tenant: &str, email: &str, error: Option<&str>) -> String {
    let body = format!(
        "<h1>Join {tenant}</h1>\n<p><strong>{email}</strong> already has a Tallydesk account. \
         Enter its password to join.</p>\n{error_block}\
         <form method=\"post\">\n\
         <label for=\"password\">Password</label>\n\
         <input id=\"password\" name=\"password\" type=\"password\" value=\"\" autocomplete=\"current-password\" required{described}>\n\
         <div class=\"actions\">\n<button type=\"submit\" class=\"primary\">Join</button>\n</div>\n</form>",
        tenant = escape(tenant),
        email = escape(email),
        error_block = error_block(error),
        described = described(error),
    );
    document("Accept invitation", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cannot_break_out_of_markup() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let page = login("id", "\"><script>", Some("<b>"));
        assert!(!page.contains("<script>") && !page.contains("<b>"));
    }

    #[test]
    fn the_login_form_labels_its_fields() {
        let page = login("id", "", None);
        for id in ["email", "password"] {
            assert!(
                page.contains(&format!("<label for=\"{id}\">"))
                    && page.contains(&format!("id=\"{id}\"")),
                "{id} has a label"
            );
        }
        assert!(page.contains("prefers-color-scheme: dark"), "a dark theme");
    }
}
