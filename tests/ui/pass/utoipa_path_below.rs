use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use utoipa::OpenApi;
use x402_runtime::paid;

#[derive(serde::Deserialize, utoipa::IntoParams)]
struct City {
    city: String,
}

/// Current weather for a city.
#[paid(price = "0.001")]
#[utoipa::path(get, path = "/weather", params(City), responses((status = 200, body = String)))]
async fn weather(Query(q): Query<City>) -> String {
    q.city
}

#[derive(OpenApi)]
#[openapi(paths(weather))]
struct ApiDoc;

fn main() {
    let _app: Router = Router::new().route("/weather", get(weather));
    let _doc = ApiDoc::openapi();
}
