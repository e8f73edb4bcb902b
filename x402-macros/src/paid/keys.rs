//! The names of the `#[paid]` options, and the errors that name them.

/// One option of `#[paid(...)]`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Key {
    Price,
    Currency,
    Description,
    MaxTimeoutSeconds,
    Settle,
    Method,
    Path,
    OperationId,
    Networks,
    PayTo,
    Quote,
    Min,
    Max,
    PayPage,
    Upto,
}

impl Key {
    pub(crate) const ALL: [Key; 15] = [
        Key::Price,
        Key::Currency,
        Key::Description,
        Key::MaxTimeoutSeconds,
        Key::Settle,
        Key::Method,
        Key::Path,
        Key::OperationId,
        Key::Networks,
        Key::PayTo,
        Key::Quote,
        Key::Min,
        Key::Max,
        Key::PayPage,
        Key::Upto,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Key::Price => "price",
            Key::Currency => "currency",
            Key::Description => "description",
            Key::MaxTimeoutSeconds => "max_timeout_seconds",
            Key::Settle => "settle",
            Key::Method => "method",
            Key::Path => "path",
            Key::OperationId => "operation_id",
            Key::Networks => "networks",
            Key::PayTo => "pay_to",
            Key::Quote => "quote",
            Key::Min => "min",
            Key::Max => "max",
            Key::PayPage => "pay_page",
            Key::Upto => "upto",
        }
    }

    /// What kind of literal the value must be.
    fn kind(self) -> &'static str {
        match self {
            Key::MaxTimeoutSeconds => "an integer",
            Key::Currency => "a string literal or an array of them",
            Key::Networks => "an array of string literals",
            Key::Quote => "the path of an `async fn`",
            Key::PayPage => "a boolean",
            _ => "a string literal",
        }
    }

    /// An example of a correct entry, shown in errors.
    pub(crate) fn example(self) -> &'static str {
        match self {
            Key::Price => "`price = \"0.001\"`",
            Key::Currency => "`currency = \"USDC\"` or `currency = [\"USDC\", \"EURC\"]`",
            Key::Description => "`description = \"Current weather\"`",
            Key::MaxTimeoutSeconds => "`max_timeout_seconds = 120`",
            Key::Settle => "`settle = \"after\"` or `settle = \"before\"`",
            Key::Method => "`method = \"GET\"`",
            Key::Path => "`path = \"/weather\"`",
            Key::OperationId => "`operation_id = \"get_weather\"`",
            Key::Networks => "`networks = [\"eip155:8453\", \"eip155:84532\"]`",
            Key::PayTo => "`pay_to = \"0x209693Bc6afc0C5328bA36FaF03C514EF312287C\"`",
            Key::Quote => "`quote = quote_forecast`",
            Key::Min => "`min = \"0.001\"`",
            Key::Max => "`max = \"0.05\"`",
            Key::PayPage => "`pay_page = false`",
            Key::Upto => "`upto = \"0.50\"`",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|key| key.name() == name)
    }
}

/// The error for a value of the wrong kind: names the key and shows the expected form.
pub(crate) fn wrong_kind(key: Key) -> String {
    format!("`{}` expects {}: {}", key.name(), key.kind(), key.example())
}

/// The error for a key that is not an option.
pub(crate) fn unknown_key(name: &str) -> String {
    let known: Vec<&str> = Key::ALL.iter().map(|key| key.name()).collect();
    let hint = closest(name, &known).map_or_else(String::new, |k| format!("; did you mean `{k}`?"));
    format!(
        "unknown `#[paid]` option `{name}`{hint} (known options: {})",
        known.join(", ")
    )
}

/// The known name closest to `name`: equal ignoring case, or within edit distance 2.
fn closest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    if let Some(same) = known.iter().find(|k| k.eq_ignore_ascii_case(name)) {
        return Some(same);
    }
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let known: Vec<&str> = Key::ALL.iter().map(|key| key.name()).collect();
        assert_eq!(closest("prise", &known), Some("price"));
        assert_eq!(closest("PRICE", &known), Some("price"));
        assert_eq!(closest("max_timeout_secs", &known), None);
        assert_eq!(closest("curency", &known), Some("currency"));
        assert_eq!(closest("amount", &known), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
