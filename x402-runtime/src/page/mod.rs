//! The pay page: what a person who opens a paid URL in a browser sees instead of the 402's
//! JSON. Same status, same `PAYMENT-REQUIRED` header; the body is a small self-contained HTML
//! page (HTML, CSS and script served from the binary, no external request) that shows what is
//! sold and its price, and pays it with the person's wallet: it finds injected wallets
//! (EIP-6963, then `window.ethereum`), switches to the offer's chain (adding it if the wallet
//! lacks it), signs the EIP-3009 authorization with `eth_signTypedData_v4`, resends the request
//! with `PAYMENT-SIGNATURE` and shows the response and its receipt. A payment whose outcome is
//! not known yet is resent as it is; the page never asks for a second signature then.
//!
//! The page is served when the request's `Accept` prefers `text/html` (as browsers send on
//! navigation); agents and `curl` keep the JSON. It is on unless the configuration says
//! otherwise ([`X402ConfigBuilder::without_pay_page`](crate::X402ConfigBuilder::without_pay_page),
//! `X402_PAY_PAGE=off`) or the route does (`#[paid(pay_page = false)]`); its title, colours and
//! logo are set with [`PayPage`].
//!
//! Its Content-Security-Policy allows only its own script and style (by hash), images from
//! `data:` and `blob:` URLs (the logo, a bought image), and requests to its own origin.

mod chains;
mod html;

use std::sync::{Arc, LazyLock};

use axum::body::Body;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::{
    ACCEPT, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, VARY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use http::{HeaderMap, HeaderValue};
use sha2::{Digest as _, Sha256};

use crate::base::ConfigError;

pub(crate) use html::{OfferLine, View};

/// The page's script, as served (its hash is in the Content-Security-Policy).
const SCRIPT: &str = include_str!("page.js");
/// The page's style sheet, after the colour variables.
const STYLE: &str = include_str!("page.css");
/// Largest logo the page embeds.
pub const MAX_LOGO_BYTES: usize = 64 * 1024;

const DEFAULT_TITLE: &str = "Paid resource";
const LOGO_TYPES: [&str; 5] = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/svg+xml",
];

static SCRIPT_HASH: LazyLock<String> = LazyLock::new(|| hash(SCRIPT));

/// How the pay page looks: its title, colours and logo.
///
/// ```
/// use x402_runtime::{PayPage, X402Config};
///
/// let config = X402Config::builder()
///     .pay_to("0x209693Bc6afc0C5328bA36FaF03C514EF312287C")
///     .pay_page(
///         PayPage::new()
///             .title("Acme Weather")
///             .accent("#0a7d3b")
///             .logo("image/svg+xml", r#"<svg xmlns="http://www.w3.org/2000/svg"/>"#),
///     )
///     .build()?;
/// # Ok::<(), x402_runtime::ConfigError>(())
/// ```
///
/// Colours are CSS hex colours (`#rgb` or `#rrggbb`); the logo is a PNG, JPEG, GIF, WebP or SVG
/// image of at most [`MAX_LOGO_BYTES`], embedded in the page (an SVG logo is shown as an image,
/// so its scripts never run). Mistakes are reported by
/// [`X402ConfigBuilder::build`](crate::X402ConfigBuilder::build).
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct PayPage {
    title: Option<String>,
    accent: Option<String>,
    background: Option<String>,
    card: Option<String>,
    text: Option<String>,
    logo: Option<(String, Vec<u8>)>,
}

impl PayPage {
    /// The default page: "Paid resource", blue on light grey.
    pub fn new() -> PayPage {
        PayPage::default()
    }

    /// The heading and window title (the seller's or the API's name).
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// The colour of the button and links (default `#0052ff`).
    pub fn accent(mut self, color: impl Into<String>) -> Self {
        self.accent = Some(color.into());
        self
    }

    /// The colour around the card (default `#f3f4f6`).
    pub fn background(mut self, color: impl Into<String>) -> Self {
        self.background = Some(color.into());
        self
    }

    /// The card's colour (default `#ffffff`).
    pub fn card(mut self, color: impl Into<String>) -> Self {
        self.card = Some(color.into());
        self
    }

    /// The text colour (default `#111827`).
    pub fn text(mut self, color: impl Into<String>) -> Self {
        self.text = Some(color.into());
        self
    }

    /// A logo shown next to the title: its media type (`image/png`, `image/svg+xml`, …) and
    /// bytes.
    pub fn logo(mut self, media_type: impl Into<String>, bytes: impl AsRef<[u8]>) -> Self {
        self.logo = Some((media_type.into(), bytes.as_ref().to_vec()));
        self
    }

    /// Checks the colours and the logo and renders what every page of this configuration
    /// shares: the style sheet and the Content-Security-Policy that allows it.
    pub(crate) fn prepare(&self) -> Result<Arc<Prepared>, ConfigError> {
        let colors = [
            ("accent", "accent", self.accent.as_deref(), "#0052ff"),
            ("background", "bg", self.background.as_deref(), "#f3f4f6"),
            ("card", "card", self.card.as_deref(), "#ffffff"),
            ("text", "fg", self.text.as_deref(), "#111827"),
        ];
        let mut variables = String::from(":root{");
        for (name, variable, set, default) in colors {
            let color = set.map(str::trim).unwrap_or(default);
            let rgb = parse_color(color).ok_or_else(|| {
                ConfigError::new(format!(
                    "pay page {name} colour `{color}` is not a CSS hex colour: write `#rgb` or \
                     `#rrggbb`, e.g. `{default}`"
                ))
            })?;
            variables.push_str(&format!("--{variable}:{color};"));
            if name == "accent" {
                let on_accent = if luminance(rgb) > 0.55 {
                    "#111827"
                } else {
                    "#ffffff"
                };
                variables.push_str(&format!("--on-accent:{on_accent};"));
            }
        }
        variables.push_str("--muted:color-mix(in srgb,var(--fg) 60%,transparent);");
        variables.push_str("--line:color-mix(in srgb,var(--fg) 14%,transparent);");
        variables.push_str("--code:color-mix(in srgb,var(--fg) 6%,var(--card));}\n");
        let style = variables + STYLE;
        let logo = match &self.logo {
            None => None,
            Some((media_type, bytes)) => Some(logo_uri(media_type, bytes)?),
        };
        let policy = format!(
            "default-src 'none'; script-src '{}'; style-src '{}'; img-src data: blob:; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            *SCRIPT_HASH,
            hash(&style)
        );
        let csp = HeaderValue::from_str(&policy).map_err(|_| {
            ConfigError::new("pay page: the Content-Security-Policy is not a header value")
        })?;
        let title = self
            .title
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        Ok(Arc::new(Prepared {
            title: title.unwrap_or(DEFAULT_TITLE).to_owned(),
            logo,
            style,
            csp,
        }))
    }
}

/// What every pay page of one configuration shares.
pub(crate) struct Prepared {
    title: String,
    logo: Option<String>,
    style: String,
    csp: HeaderValue,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayPage")
            .field("title", &self.title)
            .field("logo", &self.logo.is_some())
            .finish_non_exhaustive()
    }
}

impl Prepared {
    /// Turns the JSON 402 `challenge` into the page: same status and headers (the
    /// `PAYMENT-REQUIRED` one among them), an HTML body, and the page's security headers.
    pub(crate) fn answer(&self, challenge: Response, view: &View<'_>) -> Response {
        let (mut parts, _json) = challenge.into_parts();
        let header = parts
            .headers
            .get(crate::proto::PAYMENT_REQUIRED)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let page = html::render(self, header, view);
        let headers = &mut parts.headers;
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(CONTENT_SECURITY_POLICY, self.csp.clone());
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(VARY, HeaderValue::from_static("Accept"));
        headers.remove(http::header::CONTENT_LENGTH);
        Response::from_parts(parts, Body::from(page))
    }
}

/// Whether the request's `Accept` prefers HTML to JSON (a browser's navigation does; `*/*`,
/// `application/json` and no `Accept` do not; a tie goes to JSON).
pub(crate) fn prefers_html(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    if !accept.contains("html") {
        return false;
    }
    let (mut html, mut json, mut application, mut any) = (0.0f32, None, None, 0.0f32);
    for item in accept.split(',') {
        let mut pieces = item.split(';');
        let media = pieces
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let q = pieces
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .filter(|q| (0.0..=1.0).contains(q))
            .unwrap_or(1.0);
        match media.as_str() {
            "text/html" | "application/xhtml+xml" => html = html.max(q),
            "application/json" => json = Some(json.unwrap_or(0.0f32).max(q)),
            "application/*" => application = Some(application.unwrap_or(0.0f32).max(q)),
            "*/*" => any = any.max(q),
            _ => {}
        }
    }
    let json = json.or(application).unwrap_or(any);
    html > 0.0 && html > json
}

fn hash(text: &str) -> String {
    format!(
        "sha256-{}",
        STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}

/// `#rgb` or `#rrggbb` as red, green, blue.
fn parse_color(color: &str) -> Option<[u8; 3]> {
    let hex = color.strip_prefix('#')?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let channel = |i: usize, width: usize| {
        let value = u8::from_str_radix(&hex[i * width..(i + 1) * width], 16).ok()?;
        Some(if width == 1 { value * 17 } else { value })
    };
    let width = match hex.len() {
        3 => 1,
        6 => 2,
        _ => return None,
    };
    Some([channel(0, width)?, channel(1, width)?, channel(2, width)?])
}

/// Relative luminance (sRGB, WCAG), 0 for black to 1 for white.
fn luminance(rgb: [u8; 3]) -> f32 {
    let linear = |c: u8| {
        let c = f32::from(c) / 255.0;
        if c <= 0.040_45 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * linear(rgb[0]) + 0.7152 * linear(rgb[1]) + 0.0722 * linear(rgb[2])
}

fn logo_uri(media_type: &str, bytes: &[u8]) -> Result<String, ConfigError> {
    let media_type = media_type.trim().to_ascii_lowercase();
    if !LOGO_TYPES.contains(&media_type.as_str()) {
        return Err(ConfigError::new(format!(
            "pay page logo type `{media_type}` is not an image type the page shows: use one of {}",
            LOGO_TYPES.join(", ")
        )));
    }
    if bytes.is_empty() || bytes.len() > MAX_LOGO_BYTES {
        return Err(ConfigError::new(format!(
            "pay page logo is {} bytes: give an image of 1 to {MAX_LOGO_BYTES} bytes",
            bytes.len()
        )));
    }
    Ok(format!(
        "data:{media_type};base64,{}",
        STANDARD.encode(bytes)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_str(value).expect("header"));
        headers
    }

    #[test]
    fn browsers_get_the_page_and_agents_the_json() {
        let navigation = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,\
                          image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7";
        assert!(prefers_html(&accept(navigation)));
        assert!(prefers_html(&accept("text/html")));
        assert!(prefers_html(&accept("application/json;q=0.5, text/html")));
        assert!(!prefers_html(&HeaderMap::new()));
        assert!(!prefers_html(&accept("*/*")));
        assert!(!prefers_html(&accept("application/json")));
        assert!(!prefers_html(&accept("application/json, text/html")));
        assert!(!prefers_html(&accept("text/html;q=0.4, */*")));
        assert!(!prefers_html(&accept("text/html;q=0")));
        assert!(!prefers_html(&accept("text/html;q=0.9, application/*")));
    }

    #[test]
    fn colours_are_checked_and_the_text_on_the_button_stays_readable() {
        assert_eq!(parse_color("#0052ff"), Some([0, 0x52, 0xff]));
        assert_eq!(parse_color("#fff"), Some([255, 255, 255]));
        for bad in ["0052ff", "#12345", "#gggggg", "red", "#fff;}body{x:y", ""] {
            assert_eq!(parse_color(bad), None, "{bad}");
        }
        let error = PayPage::new().accent("red").prepare().expect_err("not hex");
        assert!(error.to_string().contains("accent colour `red`"), "{error}");
        let light = PayPage::new().accent("#ffeb3b").prepare().expect("page");
        assert!(light.style.contains("--on-accent:#111827;"));
        let dark = PayPage::new().prepare().expect("page");
        assert!(dark.style.contains("--accent:#0052ff;--on-accent:#ffffff;"));
    }

    #[test]
    fn the_policy_allows_exactly_the_page_own_script_and_style() {
        let page = PayPage::new()
            .background("#101010")
            .prepare()
            .expect("page");
        let csp = page.csp.to_str().expect("ascii");
        assert!(
            csp.starts_with("default-src 'none'; script-src 'sha256-"),
            "{csp}"
        );
        assert!(csp.contains(&format!("script-src '{}'", hash(SCRIPT))));
        assert!(csp.contains(&format!("style-src '{}'", hash(&page.style))));
        assert!(!csp.contains("unsafe"));
    }

    #[test]
    fn the_assets_cannot_close_their_elements() {
        assert!(!SCRIPT.to_ascii_lowercase().contains("</script"));
        assert!(!STYLE.to_ascii_lowercase().contains("</style"));
    }

    #[test]
    fn logos_are_images_of_bounded_size() {
        let page = PayPage::new()
            .logo("image/png", [1u8, 2, 3])
            .prepare()
            .expect("page");
        assert_eq!(page.logo.as_deref(), Some("data:image/png;base64,AQID"));
        let error = PayPage::new()
            .logo("text/html", b"<b>")
            .prepare()
            .expect_err("type");
        assert!(error.to_string().contains("`text/html`"), "{error}");
        let big = vec![0u8; MAX_LOGO_BYTES + 1];
        assert!(PayPage::new().logo("image/png", big).prepare().is_err());
    }
}
