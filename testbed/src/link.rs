//! Library linking for hardhat artifacts.

use alloy::primitives::{Address, Bytes, hex};
use serde_json::Value;

use crate::Error;

/// Links library addresses into a hardhat artifact's bytecode.
///
/// `code` is the artifact's `bytecode` or `deployedBytecode` (hex, `0x` optional); `link_refs`
/// the matching `linkReferences` / `deployedLinkReferences` object
/// (`{source: {library: [{start, length}]}}`, offsets in bytes); `libraries` maps library names
/// to their deployed addresses. Fails when a referenced library has no address, a reference is
/// malformed or out of range, or a `__$…$__` placeholder remains.
pub fn link_bytecode(
    code: &str,
    link_refs: &Value,
    libraries: &[(&str, Address)],
) -> Result<Bytes, Error> {
    let mut code = code.strip_prefix("0x").unwrap_or(code).as_bytes().to_vec();
    let sources = match link_refs {
        Value::Object(sources) => sources,
        Value::Null => &serde_json::Map::new(),
        other => {
            return Err(Error::Artifact(format!(
                "link references are not an object: {other}"
            )));
        }
    };
    for (source, libs) in sources {
        let Value::Object(libs) = libs else {
            return Err(Error::Artifact(format!(
                "link references of {source} are not an object"
            )));
        };
        for (name, refs) in libs {
            let address = libraries
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, a)| *a)
                .ok_or_else(|| Error::Artifact(format!("no address given for library {name}")))?;
            let address_hex = hex::encode(address);
            let Value::Array(refs) = refs else {
                return Err(Error::Artifact(format!(
                    "link references of {name} are not a list"
                )));
            };
            for r in refs {
                let start = r.get("start").and_then(Value::as_u64);
                let length = r.get("length").and_then(Value::as_u64);
                let (Some(start), Some(20)) = (start, length) else {
                    return Err(Error::Artifact(format!(
                        "bad link reference for {name}: {r}"
                    )));
                };
                let slot = usize::try_from(start)
                    .ok()
                    .and_then(|s| s.checked_mul(2))
                    .and_then(|p| code.get_mut(p..p.checked_add(40)?))
                    .ok_or_else(|| {
                        Error::Artifact(format!(
                            "link reference for {name} at byte {start} is past the end"
                        ))
                    })?;
                slot.copy_from_slice(address_hex.as_bytes());
            }
        }
    }
    if let Some(at) = code.windows(3).position(|w| w == b"__$") {
        return Err(Error::Artifact(format!(
            "unlinked library placeholder left at byte {} of the bytecode",
            at / 2
        )));
    }
    hex::decode(&code)
        .map(Bytes::from)
        .map_err(|e| Error::Artifact(format!("bytecode is not hex after linking: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::address;
    use serde_json::json;

    const LIB: Address = address!("0x5FbDB2315678afecb367f032d93F642f64180aa3");
    const PLACEHOLDER: &str = "__$715109b5d747ea58b675c6ea3f0dba8c60$__";

    fn refs(starts: &[u64]) -> Value {
        let list: Vec<Value> = starts
            .iter()
            .map(|s| json!({"start": s, "length": 20}))
            .collect();
        json!({"contracts/util/SignatureChecker.sol": {"SignatureChecker": list}})
    }

    #[test]
    fn links_every_reference() {
        let code = format!("0x60{PLACEHOLDER}00{PLACEHOLDER}");
        let linked =
            link_bytecode(&code, &refs(&[1, 22]), &[("SignatureChecker", LIB)]).expect("links");
        let lib = LIB.as_slice();
        assert_eq!(linked.len(), 42);
        assert_eq!(linked[0], 0x60);
        assert_eq!(&linked[1..21], lib);
        assert_eq!(linked[21], 0x00);
        assert_eq!(&linked[22..42], lib);
    }

    #[test]
    fn no_references_is_plain_decode() {
        let linked = link_bytecode("0x6001", &json!({}), &[]).expect("decodes");
        assert_eq!(linked.as_ref(), &[0x60, 0x01]);
        assert!(link_bytecode("6001", &Value::Null, &[]).is_ok());
    }

    #[test]
    fn refuses_leftover_placeholder() {
        let code = format!("0x60{PLACEHOLDER}00{PLACEHOLDER}");
        let err = link_bytecode(&code, &refs(&[1]), &[("SignatureChecker", LIB)])
            .expect_err("placeholder left");
        assert!(
            err.to_string().contains("placeholder left at byte 22"),
            "{err}"
        );
    }

    #[test]
    fn refuses_bad_references() {
        let code = format!("0x60{PLACEHOLDER}");
        let libs = [("SignatureChecker", LIB)];
        assert!(
            link_bytecode(&code, &refs(&[2]), &libs).is_err(),
            "past the end"
        );
        assert!(
            link_bytecode(&code, &refs(&[u64::MAX]), &libs).is_err(),
            "overflow"
        );
        assert!(
            link_bytecode(&code, &refs(&[1]), &[]).is_err(),
            "library without address"
        );
        let bad_len = json!({"s": {"SignatureChecker": [{"start": 1, "length": 19}]}});
        assert!(link_bytecode(&code, &bad_len, &libs).is_err(), "length");
        assert!(
            link_bytecode(&code, &json!([]), &libs).is_err(),
            "not an object"
        );
        assert!(link_bytecode("0xzz", &json!({}), &libs).is_err(), "not hex");
    }
}
