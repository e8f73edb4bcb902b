use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use x402_runtime::paid;

#[derive(serde::Deserialize)]
struct City {
    city: String,
}

#[derive(serde::Serialize)]
struct Weather {
    city: String,
    celsius: i32,
}

fn lookup(city: &str) -> Result<i32, (StatusCode, String)> {
    match city {
        "Paris" => Ok(18),
        other => Err((StatusCode::NOT_FOUND, format!("unknown city {other}"))),
    }
}

#[paid(price = "0.01")]
async fn weather(Query(q): Query<City>) -> Result<Json<Weather>, (StatusCode, String)> {
    let celsius = lookup(&q.city)?;
    if celsius > 50 {
        return Err((StatusCode::INTERNAL_SERVER_ERROR, "sensor fault".to_owned()));
    }
    Ok(Json(Weather {
        city: q.city,
        celsius,
    }))
}

fn main() {
    let _app: Router = Router::new().route("/weather", get(weather));
}
