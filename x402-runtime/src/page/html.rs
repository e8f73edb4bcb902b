//! The page's HTML: every value from the route or the request is escaped; the offers the script
//! pays are read back from the `PAYMENT-REQUIRED` value in a `<meta>` element (base64, so it
//! cannot leave its attribute), and what the script needs to know of each chain from the
//! offer's `data-` attributes.

use std::fmt::Write as _;

use super::chains;
use super::{Prepared, SCRIPT};
use crate::price::Price;
use crate::schemes::Offer;

/// What one page shows.
pub(crate) struct View<'a> {
    /// The route's description.
    pub(crate) description: Option<&'a str>,
    /// The resource URL.
    pub(crate) url: &'a str,
    /// The offers, in the order of the challenge's `accepts`.
    pub(crate) offers: Vec<OfferLine<'a>>,
}

/// One offer and its price.
pub(crate) struct OfferLine<'a> {
    pub(crate) offer: &'a Offer,
    pub(crate) price: &'a Price,
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped: safe in element content and in quoted
/// attribute values.
pub(crate) fn escape(text: &str) -> String {
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

/// The page for `view`, whose challenge header is `header`.
pub(crate) fn render(prepared: &Prepared, header: &str, view: &View<'_>) -> String {
    let title = escape(&prepared.title);
    let mut page = String::with_capacity(4096 + prepared.style.len() + SCRIPT.len());
    page.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    page.push_str("<meta name=\"robots\" content=\"noindex\">\n");
    let _ = writeln!(
        page,
        "<meta name=\"x402-payment-required\" content=\"{}\">",
        escape(header)
    );
    let _ = writeln!(
        page,
        "<title>{title}</title>\n<link rel=\"icon\" href=\"data:,\">"
    );
    let _ = writeln!(
        page,
        "<style>{}</style>\n</head>\n<body>\n<main>",
        prepared.style
    );
    page.push_str("<header>");
    if let Some(logo) = &prepared.logo {
        let _ = write!(page, "<img src=\"{}\" alt=\"\">", escape(logo));
    }
    let _ = writeln!(page, "<h1>{title}</h1></header>");
    page.push_str("<div class=\"badge\">402 · Payment required</div>\n");
    if let Some(description) = view.description.filter(|d| !d.trim().is_empty()) {
        let _ = writeln!(
            page,
            "<p class=\"what\" id=\"description\">{}</p>",
            escape(description)
        );
    }
    let _ = writeln!(
        page,
        "<p class=\"resource\" id=\"resource\">{}</p>",
        escape(view.url)
    );
    offers(&mut page, &view.offers);
    page.push_str("<button id=\"pay\" type=\"button\">Pay with wallet</button>\n");
    page.push_str("<div id=\"wallets\" hidden></div>\n");
    page.push_str("<p id=\"status\" role=\"status\" aria-live=\"polite\"></p>\n");
    page.push_str(
        "<section id=\"result\" hidden><h2>Your purchase</h2><div id=\"content\"></div>\
         <dl id=\"receipt\"></dl></section>\n",
    );
    page.push_str(
        "<noscript><p>Paying here needs JavaScript and a browser wallet.</p></noscript>\n",
    );
    page.push_str(
        "<footer>Paid with x402: programs pay this URL with the offer in its \
         <code>PAYMENT-REQUIRED</code> header.</footer>\n</main>\n",
    );
    let _ = write!(page, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    page
}

/// The offers as radio buttons, the first payable one chosen.
fn offers(page: &mut String, lines: &[OfferLine<'_>]) {
    let legend = if lines.len() > 1 {
        "Choose how to pay"
    } else {
        "Price"
    };
    let _ = writeln!(page, "<fieldset id=\"offers\"><legend>{legend}</legend>");
    let mut checked = false;
    for (index, line) in lines.iter().enumerate() {
        let offer = line.offer;
        // The page pays with the browser's EVM wallet: offers on other families are not shown.
        let Some(chain_id) = offer.network.chain_id() else {
            continue;
        };
        let extra = offer.requirements.extra.as_ref();
        let named = |key: &str| {
            extra
                .and_then(|e| e.get(key))
                .is_some_and(|v| v.is_string())
        };
        let payable = offer.requirements.scheme == "exact" && named("name") && named("version");
        let known = chains::known(chain_id);
        let chain_name = known.map_or_else(|| format!("chain {chain_id}"), |c| c.name.to_owned());
        let price = line.price.to_string();
        let _ = write!(
            page,
            "<label class=\"offer\"><input type=\"radio\" name=\"offer\" value=\"{index}\" \
             data-chain=\"{chain_id}\" data-chain-name=\"{}\" data-explorer=\"{}\" data-rpc=\"{}\" \
             data-gas=\"{}\" data-price=\"{}\" data-token=\"{}\" data-decimals=\"{}\"",
            escape(&chain_name),
            known.map_or("", |c| c.explorer),
            known.map_or("", |c| c.rpc),
            known.map_or("ETH", |c| c.gas),
            escape(&price),
            escape(offer.asset.currency.symbol()),
            offer.asset.decimals,
        );
        if !payable {
            page.push_str(" data-unpayable=\"1\" disabled");
        } else if !checked {
            page.push_str(" checked");
            checked = true;
        }
        let _ = writeln!(
            page,
            "> <strong>{}</strong> <span>on {}</span></label>",
            escape(&price),
            escape(&chain_name)
        );
    }
    page.push_str("</fieldset>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(escape("Lima, 3 days"), "Lima, 3 days");
    }
}
