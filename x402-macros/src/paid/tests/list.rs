//! The error list itself: every recorded error reaches `finish`, none can be dropped.

use proc_macro2::Span;

use super::super::Errors;

fn error(message: &str) -> syn::Error {
    syn::Error::new(Span::call_site(), message)
}

#[test]
fn an_empty_list_finishes_ok() {
    assert!(Errors::default().finish().is_ok());
}

#[test]
fn finish_returns_every_recorded_error_in_order() {
    let mut errors = Errors::default();
    errors.push(error("first"));
    assert_eq!(errors.take(Ok::<_, syn::Error>(7)), Some(7));
    assert_eq!(errors.take::<()>(Err(error("second"))), None);
    let messages: Vec<String> = errors
        .finish()
        .err()
        .into_iter()
        .flat_map(|combined| combined.into_iter().map(|e| e.to_string()))
        .collect();
    assert_eq!(messages, ["first", "second"]);
}

#[test]
#[should_panic(expected = "`Errors` dropped without `finish`: lost")]
fn dropping_recorded_errors_panics() {
    let mut errors = Errors::default();
    errors.push(error("lost"));
    drop(errors);
}

#[test]
fn dropping_an_empty_list_is_fine() {
    drop(Errors::default());
}
