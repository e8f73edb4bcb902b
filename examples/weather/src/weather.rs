//! The paid handlers.

use axum::Json;
use axum::extract::Query;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use x402_runtime::{Charge, Payment, Quote, paid, quote};

/// Query of `GET /weather` and `GET /alerts`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct City {
    /// City name.
    pub city: String,
}

/// Current conditions.
#[derive(Debug, Serialize, ToSchema)]
pub struct Weather {
    /// City name, as asked.
    pub city: String,
    /// Temperature in °C.
    pub celsius: f32,
    /// Short description.
    pub conditions: &'static str,
    /// Who paid for this answer.
    pub paid_by: String,
}

/// Body of `POST /forecast`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ForecastRequest {
    /// City name.
    pub city: String,
    /// Number of days, 1 to 7.
    #[schema(minimum = 1, maximum = 7)]
    pub days: u8,
}

/// One day of a forecast.
#[derive(Debug, Serialize, ToSchema)]
pub struct Day {
    /// Days from today.
    pub day: u8,
    /// Highest temperature in °C.
    pub high: f32,
    /// Lowest temperature in °C.
    pub low: f32,
}

/// A multi-day forecast.
#[derive(Debug, Serialize, ToSchema)]
pub struct Forecast {
    /// City name, as asked.
    pub city: String,
    /// One entry per day.
    pub days: Vec<Day>,
}

/// A deterministic stand-in for a weather model: the same city always gets the same weather.
fn base_temperature(city: &str) -> f32 {
    let sum: u32 = city.bytes().map(u32::from).sum();
    (sum % 30) as f32 + 0.5
}

/// Current weather for a city.
///
/// Temperature and conditions now, and the address that paid for the answer.
#[paid(price = "0.001", currency = "USDC")]
#[utoipa::path(
    get,
    path = "/weather",
    params(City),
    responses((status = 200, description = "Current conditions", body = Weather))
)]
pub async fn weather(payment: Payment, Query(q): Query<City>) -> Json<Weather> {
    Json(Weather {
        celsius: base_temperature(&q.city),
        city: q.city,
        conditions: "clear",
        paid_by: payment.payer().to_string(),
    })
}

/// Daily forecast for up to 7 days.
#[paid(price = "0.01", currency = "USDC")]
#[utoipa::path(
    post,
    path = "/forecast",
    request_body = ForecastRequest,
    responses(
        (status = 200, description = "One entry per day", body = Forecast),
        (status = 422, description = "`days` is not between 1 and 7; nothing is charged")
    )
)]
pub async fn forecast(
    Json(req): Json<ForecastRequest>,
) -> Result<Json<Forecast>, (axum::http::StatusCode, String)> {
    if !(1..=7).contains(&req.days) {
        return Err((
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "days must be between 1 and 7".into(),
        ));
    }
    let base = base_temperature(&req.city);
    let days = (1..=req.days)
        .map(|day| Day {
            day,
            high: base + f32::from(day % 3),
            low: base - 6.0 + f32::from(day % 2),
        })
        .collect();
    Ok(Json(Forecast {
        city: req.city,
        days,
    }))
}

/// Active alerts for a city.
#[derive(Debug, Serialize, ToSchema)]
pub struct Alerts {
    /// City name, as asked.
    pub city: String,
    /// Alert texts; empty when there are none.
    pub alerts: Vec<&'static str>,
}

/// Active weather alerts for a city.
#[paid(price = "$0.005")]
#[utoipa::path(
    get,
    path = "/alerts",
    params(City),
    responses((status = 200, description = "Alerts in effect", body = Alerts))
)]
pub async fn alerts(Query(q): Query<City>) -> Json<Alerts> {
    let alerts = if base_temperature(&q.city) > 25.0 {
        vec!["heat advisory"]
    } else {
        Vec::new()
    };
    Json(Alerts {
        city: q.city,
        alerts,
    })
}

/// Query of `GET /history`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// City name.
    pub city: String,
    /// Number of past days, 1 to 30; each costs 0.001 USDC.
    #[param(minimum = 1, maximum = 30)]
    pub days: u32,
}

/// Past daily temperatures.
#[derive(Debug, Serialize, ToSchema)]
pub struct History {
    /// City name, as asked.
    pub city: String,
    /// Mean temperature in °C per day, the most recent first.
    pub celsius: Vec<f32>,
}

/// The price of `GET /history`: 0.001 USDC a day.
#[quote]
pub async fn quote_history(Query(q): Query<HistoryQuery>) -> Result<Quote, (StatusCode, String)> {
    if !(1..=30).contains(&q.days) {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            "days must be between 1 and 30".into(),
        ));
    }
    Ok(Quote::atomic(1_000 * u128::from(q.days)))
}

/// Daily history for a city, priced by the number of days.
///
/// 0.001 USDC a day, 1 to 30 days: the 402 quotes this request's price.
#[paid(quote = quote_history, min = "0.001", max = "0.03", currency = "USDC")]
#[utoipa::path(
    get,
    path = "/history",
    params(HistoryQuery),
    responses((status = 200, description = "One mean per day", body = History))
)]
pub async fn history(Query(q): Query<HistoryQuery>) -> Json<History> {
    let base = base_temperature(&q.city);
    let celsius = (0..q.days).map(|day| base - (day % 5) as f32).collect();
    Json(History {
        city: q.city,
        celsius,
    })
}

/// Climate normals.
#[derive(Debug, Serialize, ToSchema)]
pub struct Climate {
    /// City name, as asked.
    pub city: String,
    /// Mean yearly temperature in °C.
    pub mean_celsius: f32,
}

/// Climate normals for a city, payable on Base Sepolia or Base.
#[paid(price = "0.002", currency = "USDC", networks = ["eip155:84532", "eip155:8453"])]
#[utoipa::path(
    get,
    path = "/climate",
    params(City),
    responses((status = 200, description = "Yearly means", body = Climate))
)]
pub async fn climate(Query(q): Query<City>) -> Json<Climate> {
    Json(Climate {
        mean_celsius: base_temperature(&q.city) - 8.0,
        city: q.city,
    })
}

/// Query of `GET /observations`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ObservationsQuery {
    /// City name.
    pub city: String,
    /// Most observations wanted, 1 to 50; each one returned costs 0.0002 USDC.
    #[param(minimum = 1, maximum = 50)]
    pub limit: u32,
}

/// Station observations.
#[derive(Debug, Serialize, ToSchema)]
pub struct Observations {
    /// City name, as asked.
    pub city: String,
    /// Temperatures in °C, one per observation found, the most recent first.
    pub celsius: Vec<f32>,
}

/// What one observation costs, in USDC's atomic units (0.0002 USDC).
pub const OBSERVATION_PRICE: u128 = 200;

/// How many observations the stations hold for a city: a deterministic stand-in, so that some
/// cities have fewer than asked.
pub fn stored_observations(city: &str) -> u32 {
    city.bytes().map(u32::from).sum::<u32>() % 40
}

/// Recent station observations, billed by what is returned.
///
/// The payer authorizes up to 0.01 USDC (50 observations at 0.0002); only the observations
/// actually found are charged, so a city with few stations costs less and one with none costs
/// nothing. `limit` above 50 is refused before anything is charged.
#[paid(upto = "0.01", currency = "USDC")]
#[utoipa::path(
    get,
    path = "/observations",
    params(ObservationsQuery),
    responses((status = 200, description = "The observations found", body = Observations))
)]
pub async fn observations(
    Query(q): Query<ObservationsQuery>,
) -> Result<(Charge, Json<Observations>), (StatusCode, String)> {
    if !(1..=50).contains(&q.limit) {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit must be between 1 and 50".into(),
        ));
    }
    let found = q.limit.min(stored_observations(&q.city));
    let base = base_temperature(&q.city);
    let celsius = (0..found).map(|i| base - (i % 7) as f32 * 0.5).collect();
    let charge = Charge::atomic(OBSERVATION_PRICE * u128::from(found));
    Ok((
        charge,
        Json(Observations {
            city: q.city,
            celsius,
        }),
    ))
}
