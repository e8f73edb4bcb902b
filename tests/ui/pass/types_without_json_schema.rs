// Types that do not implement `schemars::JsonSchema` compile as before and publish no shape;
// beside them, types that do publish theirs. trybuild runs this: the asserts are checked.
use axum::extract::{Path, Query};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use x402_runtime::paid;

#[derive(Deserialize)]
struct Plain {
    city: String,
}

#[derive(Serialize)]
struct PlainOut {
    celsius: f32,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct Shaped {
    city: String,
}

#[derive(Serialize, schemars::JsonSchema)]
struct ShapedOut {
    celsius: f32,
}

#[paid(price = "0.001")]
async fn plain(Query(q): Query<Plain>, Path(id): Path<u32>) -> Json<PlainOut> {
    let _ = (q.city, id);
    Json(PlainOut { celsius: 1.0 })
}

#[paid(price = "0.001")]
async fn shaped(Json(q): Json<Shaped>) -> Result<Json<ShapedOut>, String> {
    let _ = q.city;
    Ok(Json(ShapedOut { celsius: 1.0 }))
}

fn main() {
    let _app: Router = Router::new()
        .route("/plain/{id}", get(plain))
        .route("/shaped", post(shaped));
    let shapes = |name: &str| {
        x402_runtime::routes()
            .into_iter()
            .find(|r| r.handler() == name)
            .expect("registered")
            .shapes()
    };
    let unshaped = shapes("plain");
    assert!(unshaped.query.is_none() && unshaped.body.is_none() && unshaped.output.is_none());
    // `u32` implements JsonSchema: the path parameter has a shape, the plain struct has none.
    assert_eq!(unshaped.path.expect("u32")["type"], "integer");
    let with = shapes("shaped");
    let (kind, body) = with.body.expect("the JSON body's shape");
    assert_eq!(kind, x402_runtime::BodyKind::Json);
    assert_eq!(body["required"], serde_json::json!(["city"]));
    let output = with.output.expect("the Json inside the Result");
    assert_eq!(output["properties"]["celsius"]["type"], "number");
}
