//! What a valid handler expands to.

use quote::quote;
use syn::{Expr, Item, Stmt};

use super::{compact, errors, field, functions, record, run};

#[test]
fn expands_the_weather_handler() {
    let file = run(
        quote!(price = "0.001"),
        quote! {
            /// Current weather.
            pub async fn weather(State(s): State<App>, Query(q): Query<City>) -> Json<Weather> {
                Json(s.lookup(&q.city)?)
            }
        },
    );
    assert!(errors(&file).is_empty());
    assert_eq!(file.items.len(), 3);
    let Item::Struct(marker) = &file.items[0] else {
        panic!("expected the marker struct first")
    };
    assert_eq!(marker.ident, "__x402_route_weather");
    assert_eq!(compact(&marker.vis), "pub");
    assert_eq!(compact(&marker.attrs[0]), "#[doc(hidden)]");
    let Item::Const(registration) = &file.items[1] else {
        panic!("expected the registration second")
    };
    let Expr::Block(block) = &*registration.expr else {
        panic!("expected `const _: () = {{ ... }}`")
    };
    let [_, Stmt::Item(Item::Impl(endpoint)), Stmt::Macro(submit)] = block.block.stmts.as_slice()
    else {
        panic!("expected the static, the PaidEndpoint impl and inventory::submit!")
    };
    assert_eq!(
        compact(endpoint),
        "impl::x402_runtime::__private::PaidEndpointfor__x402_route_weather{constROUTE:&'static\
         ::x402_runtime::PaidRoute=&__X402_ROUTE;}"
    );
    assert_eq!(
        compact(&submit.mac),
        "::x402_runtime::__private::inventory::submit!{::x402_runtime::__private::RouteEntry(&\
         __X402_ROUTE)}"
    );

    let fields = record(&file);
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "handler",
            "module_path",
            "operation_id",
            "pricing",
            "description",
            "max_timeout_seconds",
            "settle",
            "method",
            "path",
            "file",
            "line",
        ]
    );
    assert_eq!(field(&file, "handler"), "\"weather\"");
    assert_eq!(field(&file, "operation_id"), "\"weather\"");
    assert_eq!(
        field(&file, "pricing"),
        "::x402_runtime::Pricing::Fixed(::x402_runtime::Price{human:\"0.001\",atomic:1000u128,\
         decimals:6u8,currency:::x402_runtime::Currency::Usdc,})"
    );
    assert_eq!(
        field(&file, "description"),
        "::core::option::Option::Some(\"Current weather.\")"
    );
    assert_eq!(
        field(&file, "max_timeout_seconds"),
        "::core::option::Option::None"
    );
    assert_eq!(
        field(&file, "settle"),
        "::x402_runtime::SettleTiming::AfterSuccess"
    );
    assert_eq!(field(&file, "method"), "::core::option::Option::None");
    assert_eq!(field(&file, "line"), "::core::line!()");

    let handler = functions(&file)[0];
    assert_eq!(handler.sig.ident, "weather");
    assert_eq!(compact(&handler.vis), "pub");
    assert!(
        handler.sig.asyncness.is_none(),
        "a plain fn returning the paywall's boxed future"
    );
    let attrs: Vec<String> = handler.attrs.iter().map(compact).collect();
    assert_eq!(
        attrs,
        [
            "#[allow(clippy::too_many_arguments)]",
            "#[doc=r\" Current weather.\"]"
        ],
        "the user's attributes are kept, after the allow for the added argument"
    );
    let inputs: Vec<String> = handler.sig.inputs.iter().map(compact).collect();
    assert_eq!(
        inputs,
        [
            "__x402_paywall:::x402_runtime::__private::Paywall<__x402_route_weather>",
            "__x402_arg0:State<App>",
            "__x402_arg1:Query<City>",
        ]
    );
    assert_eq!(
        compact(&handler.sig.output),
        "->::x402_runtime::__private::HandlerFuture<'static>"
    );
    let [Stmt::Item(Item::Fn(inner)), Stmt::Expr(call, None)] = handler.block.stmts.as_slice()
    else {
        panic!("expected the inner fn, then the paywall call");
    };
    assert_eq!(inner.sig.ident, "__x402_handler");
    assert_eq!(
        compact(&inner.sig.inputs),
        "State(s):State<App>,Query(q):Query<City>"
    );
    assert_eq!(compact(&inner.sig.output), "->Json<Weather>");
    assert_eq!(compact(&inner.block), "{Json(s.lookup(&q.city)?)}");
    assert_eq!(
        compact(call),
        "__x402_paywall.finish(::x402_runtime::__private::handler_future(__x402_handler(__x402_arg0,__x402_arg1)))"
    );
    println!("{}", quote!(#file));
}

#[test]
fn records_every_option() {
    let file = run(
        quote!(
            price = "0.05",
            currency = "EURC",
            description = " Paid report ",
            max_timeout_seconds = 120,
            settle = "before",
            method = "post",
            path = "/report",
            operation_id = "make_report"
        ),
        quote! {
            /// Ignored: the attribute's description wins.
            pub(crate) async fn report() {}
        },
    );
    assert!(errors(&file).is_empty(), "{:?}", errors(&file));
    assert!(field(&file, "pricing").contains("atomic:50000u128"));
    assert!(field(&file, "pricing").contains("::x402_runtime::Currency::Eurc"));
    assert_eq!(
        field(&file, "description"),
        "::core::option::Option::Some(\"Paid report\")"
    );
    assert_eq!(
        field(&file, "max_timeout_seconds"),
        "::core::option::Option::Some(120u32)"
    );
    assert_eq!(
        field(&file, "settle"),
        "::x402_runtime::SettleTiming::Before"
    );
    assert_eq!(
        field(&file, "method"),
        "::core::option::Option::Some(\"POST\")"
    );
    assert_eq!(
        field(&file, "path"),
        "::core::option::Option::Some(\"/report\")"
    );
    assert_eq!(field(&file, "operation_id"), "\"make_report\"");
    let Item::Struct(marker) = &file.items[0] else {
        panic!()
    };
    assert_eq!(compact(&marker.vis), "pub(crate)");
    // No arguments and no return type: only the paywall, and the inner fn returns `()`.
    let handler = functions(&file)[0];
    assert_eq!(handler.sig.inputs.len(), 1);
    assert!(compact(&handler.block).contains(
        "__x402_paywall.finish(::x402_runtime::__private::handler_future(__x402_handler()))"
    ));
}

#[test]
fn reads_route_from_utoipa_and_docs() {
    let file = run(
        quote!(price = "$0.01"),
        quote! {
            /// First line
            ///   continues here.
            ///
            /// Second paragraph.
            #[utoipa::path(get, path = "/weather", params(City), responses((status = 200, body = String)))]
            async fn weather(Query(q): Query<City>) -> String { q.city }
        },
    );
    assert!(errors(&file).is_empty(), "{:?}", errors(&file));
    assert_eq!(
        field(&file, "method"),
        "::core::option::Option::Some(\"GET\")"
    );
    assert_eq!(
        field(&file, "path"),
        "::core::option::Option::Some(\"/weather\")"
    );
    assert_eq!(field(&file, "operation_id"), "\"weather\"");
    assert!(field(&file, "pricing").contains("human:\"0.01\",atomic:10000u128"));
    assert_eq!(
        record(&file)
            .into_iter()
            .find(|(n, _)| n == "description")
            .map(|(_, v)| v),
        Some("::core::option::Option::Some(\"First line continues here.\")".to_owned())
    );
    let handler = functions(&file)[0];
    assert!(
        handler
            .attrs
            .iter()
            .any(|a| compact(a.path()) == "utoipa::path")
    );

    let file = run(
        quote!(price = "1"),
        quote! {
            #[path(method(post), path = "/x", operation_id = "make.x")]
            async fn make() {}
        },
    );
    assert_eq!(
        field(&file, "method"),
        "::core::option::Option::Some(\"POST\")"
    );
    assert_eq!(field(&file, "operation_id"), "\"make.x\"");
    assert_eq!(field(&file, "description"), "::core::option::Option::None");
}

#[test]
fn utoipa_conflicts_are_errors_on_our_value() {
    let file = run(
        quote!(
            price = "1",
            method = "POST",
            path = "/a",
            operation_id = "a"
        ),
        quote! {
            #[utoipa::path(get, path = "/b", operation_id = "b")]
            async fn weather() {}
        },
    );
    let messages = errors(&file);
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(
        messages[0].starts_with("`method = \"POST\"` disagrees with `get` in `#[utoipa::path]`")
    );
    assert!(messages[1].starts_with("`path = \"/a\"` disagrees with `path = \"/b\"`"));
}

#[test]
fn raw_identifiers_are_unraw_in_names() {
    let file = run(quote!(price = "1"), quote! { async fn r#match() {} });
    let Item::Struct(marker) = &file.items[0] else {
        panic!("expected the marker struct first")
    };
    assert_eq!(marker.ident, "__x402_route_match");
    assert_eq!(field(&file, "handler"), "\"match\"");
    assert_eq!(field(&file, "operation_id"), "\"match\"");
    assert_eq!(functions(&file)[0].sig.ident.to_string(), "r#match");
}
