//! The paid handlers.

use axum::Json;
use axum::extract::Query;
use serde::{Deserialize, Serialize};
use x402_runtime::{Payment, paid};

/// Query of `GET /weather`.
#[derive(Debug, Deserialize)]
pub struct City {
    /// City name.
    pub city: String,
}

/// Current conditions.
#[derive(Debug, Serialize)]
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
#[derive(Debug, Deserialize)]
pub struct ForecastRequest {
    /// City name.
    pub city: String,
    /// Number of days, 1 to 7.
    pub days: u8,
}

/// One day of a forecast.
#[derive(Debug, Serialize)]
pub struct Day {
    /// Days from today.
    pub day: u8,
    /// Highest temperature in °C.
    pub high: f32,
    /// Lowest temperature in °C.
    pub low: f32,
}

/// A multi-day forecast.
#[derive(Debug, Serialize)]
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
#[paid(price = "0.001", currency = "USDC", method = "GET", path = "/weather")]
pub async fn weather(payment: Payment, Query(q): Query<City>) -> Json<Weather> {
    Json(Weather {
        celsius: base_temperature(&q.city),
        city: q.city,
        conditions: "clear",
        paid_by: payment.payer().to_checksum(None),
    })
}

/// Daily forecast for up to 7 days.
#[paid(price = "0.01", currency = "USDC", method = "POST", path = "/forecast")]
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
#[derive(Debug, Serialize)]
pub struct Alerts {
    /// City name, as asked.
    pub city: String,
    /// Alert texts; empty when there are none.
    pub alerts: Vec<&'static str>,
}

/// Active weather alerts for a city.
#[paid(price = "$0.005", method = "GET", path = "/alerts")]
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
