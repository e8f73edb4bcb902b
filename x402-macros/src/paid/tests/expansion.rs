//! What a valid handler expands to.

use quote::quote;
use syn::Item;

use super::{block_items, compact, errors, field, functions, record, run};

#[test]
fn expands_the_weather_handler() {
    let file = run(
        quote!(price = "0.001"),
        quote! {
            /// Current weather.
            #[tracing::instrument]
            pub async fn weather(State(s): State<App>, Query(q): Query<City>) -> Json<Weather> {
                Json(s.lookup(&q.city)?)
            }
        },
    );
    assert!(errors(&file).is_empty());
    assert_eq!(
        file.items.len(),
        2,
        "the struct and the block; no utoipa, no __path_ struct"
    );
    let Item::Struct(handler) = &file.items[0] else {
        panic!("expected the handler struct first")
    };
    assert_eq!(handler.ident, "weather");
    assert_eq!(compact(&handler.vis), "pub");
    assert!(matches!(handler.fields, syn::Fields::Unit));
    let attrs: Vec<String> = handler.attrs.iter().map(compact).collect();
    assert_eq!(
        attrs,
        [
            "#[doc=r\" Current weather.\"]",
            "#[allow(non_camel_case_types)]",
            "#[derive(Clone,Copy,Debug)]",
        ],
        "the doc comment goes on the struct, `instrument` does not"
    );

    let items = block_items(&file);
    let [
        Item::Static(_),
        Item::Impl(endpoint),
        Item::Macro(submit),
        Item::Impl(handler_impl),
        Item::Fn(call),
        Item::Fn(user),
        Item::Fn(shapes),
    ] = items.as_slice()
    else {
        panic!(
            "expected the static, PaidEndpoint, submit!, Handler, __x402_call, the function, \
             __x402_shapes"
        )
    };
    assert_eq!(
        compact(endpoint),
        "impl::x402_runtime::__private::PaidEndpointforweather{constROUTE:&'static\
         ::x402_runtime::PaidRoute=&__X402_ROUTE;}"
    );
    assert_eq!(
        compact(&submit.mac),
        "::x402_runtime::__private::inventory::submit!{::x402_runtime::__private::RouteEntry(&\
         __X402_ROUTE)}"
    );
    assert_eq!(
        compact(&handler_impl.trait_.as_ref().expect("a trait impl").1),
        "::x402_runtime::__private::Handler<::x402_runtime::__private::Via<weather,__X402Via>,\
         __X402State,>"
    );
    assert_eq!(
        compact(&handler_impl.generics.where_clause),
        "where__X402State:::core::clone::Clone+::core::marker::Send+::core::marker::Sync+'static,\
         __X402Via:'static,(State<App>,Query<City>,):::x402_runtime::__private::Extractors<\
         __X402State,__X402Via>,"
    );
    assert!(
        compact(handler_impl)
            .contains("::x402_runtime::__private::serve(&__X402_ROUTE,request,state,__x402_call)"),
        "`call` is one call into the runtime"
    );
    assert_eq!(call.sig.ident, "__x402_call");
    assert_eq!(
        compact(&call.sig.inputs),
        "(__x402_arg0,__x402_arg1,):(State<App>,Query<City>,),"
    );
    assert_eq!(
        compact(&call.block),
        "{::x402_runtime::__private::handler_future(weather(__x402_arg0,__x402_arg1))}"
    );
    assert_eq!(user.sig.ident, "weather");
    assert!(user.sig.asyncness.is_some());
    assert_eq!(compact(&user.vis), "", "private inside the block");
    let attrs: Vec<String> = user.attrs.iter().map(compact).collect();
    assert_eq!(
        attrs,
        [
            "#[doc=r\" Current weather.\"]",
            "#[tracing::instrument]",
            "#[allow(clippy::unused_async)]",
        ],
        "the user's attributes stay on the function"
    );
    assert_eq!(
        compact(&user.sig.inputs),
        "State(s):State<App>,Query(q):Query<City>"
    );
    assert_eq!(compact(&user.sig.output), "->Json<Weather>");
    assert_eq!(compact(&user.block), "{Json(s.lookup(&q.city)?)}");
    assert_eq!(shapes.sig.ident, "__x402_shapes");
    let expected = if cfg!(feature = "schemars") {
        "{use::x402_runtime::__private::{NoSchemaas_,WithSchemaas_};letmutshapes=::x402_runtime::\
         Shapes::default();shapes.query=shapes.query.or((&::x402_runtime::__private::Probe::<City\
         >::NEW).schema());shapes.output=(&::x402_runtime::__private::Probe::<Weather>::NEW).\
         schema();shapes}"
    } else {
        "{::x402_runtime::Shapes::default()}"
    };
    assert_eq!(
        compact(&shapes.block),
        expected,
        "with schemars, the query and the returned JSON are asked of the probe (`State<App>` is \
         not a shape); without, nothing is asked"
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
            "currencies",
            "networks",
            "pay_to",
            "description",
            "max_timeout_seconds",
            "settle",
            "method",
            "path",
            "shapes",
            "pay_page",
            "file",
            "line",
        ]
    );
    assert_eq!(field(&file, "handler"), "\"weather\"");
    assert_eq!(field(&file, "operation_id"), "\"weather\"");
    assert_eq!(
        field(&file, "pricing"),
        "::x402_runtime::Pricing::Fixed(::x402_runtime::Price{human:::std::borrow::Cow::\
         Borrowed(\"0.001\"),atomic:1000u128,decimals:6u8,currency:::x402_runtime::Currency::\
         Usdc,})"
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
}

#[test]
fn cfg_goes_on_every_item_and_lints_on_struct_and_function() {
    let file = run(
        quote!(price = "1"),
        quote! {
            #[cfg(feature = "paid")]
            #[allow(dead_code)]
            #[expect(clippy::unused_async)]
            #[deprecated = "use v2"]
            async fn old() {}
        },
    );
    assert!(errors(&file).is_empty(), "{:?}", errors(&file));
    let Item::Struct(handler) = &file.items[0] else {
        panic!()
    };
    let attrs: Vec<String> = handler.attrs.iter().map(compact).collect();
    assert_eq!(
        &attrs[..3],
        [
            "#[cfg(feature=\"paid\")]",
            "#[allow(dead_code)]",
            "#[deprecated=\"use v2\"]"
        ],
        "`expect` stays on the function, where it is met"
    );
    let Item::Const(block) = &file.items[1] else {
        panic!()
    };
    let attrs: Vec<String> = block.attrs.iter().map(compact).collect();
    assert_eq!(attrs, ["#[cfg(feature=\"paid\")]", "#[allow(deprecated)]"]);
    let user = &functions(&file)[1];
    let attrs: Vec<String> = user.attrs.iter().map(compact).collect();
    assert_eq!(
        attrs,
        [
            "#[allow(dead_code)]",
            "#[expect(clippy::unused_async)]",
            "#[deprecated=\"use v2\"]",
            "#[allow(clippy::unused_async)]",
        ]
    );
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
    let Item::Struct(handler) = &file.items[0] else {
        panic!()
    };
    assert_eq!(compact(&handler.vis), "pub(crate)");
    // No arguments: the unit tuple, extracted by nothing.
    let call = &functions(&file)[0];
    assert_eq!(compact(&call.sig.inputs), "():(),");
    assert_eq!(
        compact(&call.block),
        "{::x402_runtime::__private::handler_future(report())}"
    );
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
    assert!(field(&file, "pricing").contains("Borrowed(\"0.01\"),atomic:10000u128"));
    assert_eq!(
        record(&file)
            .into_iter()
            .find(|(n, _)| n == "description")
            .map(|(_, v)| v),
        Some("::core::option::Option::Some(\"First line continues here.\")".to_owned())
    );
    // utoipa's `__path_weather` is declared next to the struct, and the attribute, on the
    // function inside the block, implements it.
    let Item::Struct(path_struct) = &file.items[1] else {
        panic!("expected __path_weather second")
    };
    assert_eq!(path_struct.ident, "__path_weather");
    let user = &functions(&file)[1];
    let utoipa: Vec<String> = user
        .attrs
        .iter()
        .filter(|a| compact(a.path()) == "utoipa::path")
        .map(compact)
        .collect();
    assert_eq!(
        utoipa,
        [
            "#[utoipa::path(get,path=\"/weather\",params(City),responses((status=200,body=String)),\
          impl_for=__path_weather)]"
        ]
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

    // An `impl_for` of the user's own is left alone, and no `__path_` struct is declared.
    let file = run(
        quote!(price = "1"),
        quote! {
            #[utoipa::path(get, path = "/x", impl_for = MyPath,)]
            async fn make() {}
        },
    );
    assert_eq!(file.items.len(), 2);
    let user = &functions(&file)[1];
    assert_eq!(
        compact(&user.attrs[0]),
        "#[utoipa::path(get,path=\"/x\",impl_for=MyPath,)]"
    );
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
    let Item::Struct(handler) = &file.items[0] else {
        panic!("expected the handler struct first")
    };
    assert_eq!(handler.ident.to_string(), "r#match");
    assert_eq!(field(&file, "handler"), "\"match\"");
    assert_eq!(field(&file, "operation_id"), "\"match\"");
    assert_eq!(functions(&file)[1].sig.ident.to_string(), "r#match");

    let file = run(
        quote!(price = "1"),
        quote! {
            #[utoipa::path(get, path = "/m")]
            async fn r#match() {}
        },
    );
    let Item::Struct(path_struct) = &file.items[1] else {
        panic!()
    };
    assert_eq!(path_struct.ident, "__path_match");
}
