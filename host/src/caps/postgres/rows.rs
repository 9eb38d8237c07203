//! Rows to JSON: each cell by its type, rows through a capped portal.

use base64::Engine as _;
use futures::StreamExt;
use postgres_types::{FromSql, ToSql, Type};
use serde_json::{Map, Number, Value, json};
use tokio_postgres::Row;

use super::{COUNT_PAST_CAP, Param, pg_err};
use crate::caps::infra::host::postgres::{PgError, Rows};

/// Decodes numeric's binary form to exact decimal text.
fn decode_numeric(raw: &[u8]) -> Option<String> {
    let word = |i: usize| -> Option<i16> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
    };
    let ndigits = word(0)? as usize;
    let weight = i64::from(word(1)?);
    let sign = word(2)? as u16;
    let dscale = word(3)? as u16 as usize;
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        _ => {}
    }
    let digits: Vec<i16> = (0..ndigits).map(|i| word(4 + i)).collect::<Option<_>>()?;
    let at = |i: i64| -> i16 {
        if i >= 0 && (i as usize) < digits.len() {
            digits[i as usize]
        } else {
            0
        }
    };
    let mut s = String::new();
    if sign == 0x4000 {
        s.push('-');
    }
    if weight < 0 {
        s.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                s.push_str(&at(i).to_string());
            } else {
                s.push_str(&format!("{:04}", at(i)));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut i = weight + 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", at(i)));
            i += 1;
        }
        frac.truncate(dscale);
        s.push('.');
        s.push_str(&frac);
    }
    Some(s)
}

/// Any value, as the server sent it (binary format).
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

fn float_value(f: f64) -> Value {
    match Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None if f.is_nan() => json!("NaN"),
        None if f > 0.0 => json!("Infinity"),
        None => json!("-Infinity"),
    }
}

fn raw_value(ty: &Type, raw: &[u8]) -> Value {
    // ±infinity of the date/time types, which the time crate cannot hold.
    let infinite = match (ty, raw.len()) {
        (&Type::TIMESTAMP | &Type::TIMESTAMPTZ, 8) => {
            let v = i64::from_be_bytes(raw.try_into().unwrap_or_default());
            (v == i64::MAX || v == i64::MIN).then_some(v > 0)
        }
        (&Type::DATE, 4) => {
            let v = i32::from_be_bytes(raw.try_into().unwrap_or_default());
            (v == i32::MAX || v == i32::MIN).then_some(v > 0)
        }
        _ => None,
    };
    if let Some(pos) = infinite {
        return json!(if pos { "infinity" } else { "-infinity" });
    }
    match std::str::from_utf8(raw) {
        Ok(s) if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => json!(s),
        _ => json!(format!("\\x{}", hex::encode(raw))),
    }
}

/// One cell as JSON (the mapping is in the module docs).
fn cell(row: &Row, i: usize, ty: &Type) -> Value {
    fn opt<T, E>(r: Result<Option<T>, E>, f: impl FnOnce(T) -> Value) -> Result<Value, E> {
        r.map(|o| o.map_or(Value::Null, f))
    }
    fn arr<T>(v: Vec<Option<T>>, f: impl Fn(T) -> Value) -> Value {
        Value::Array(v.into_iter().map(|x| x.map_or(Value::Null, &f)).collect())
    }
    use time::format_description::well_known::Rfc3339;
    let iso = |s: String| json!(s);
    let r: Result<Value, tokio_postgres::Error> = match *ty {
        Type::BOOL => opt(row.try_get::<_, Option<bool>>(i), Value::Bool),
        Type::INT2 => opt(row.try_get::<_, Option<i16>>(i), |v| json!(v)),
        Type::INT4 => opt(row.try_get::<_, Option<i32>>(i), |v| json!(v)),
        Type::INT8 => opt(row.try_get::<_, Option<i64>>(i), |v| json!(v)),
        Type::OID => opt(row.try_get::<_, Option<u32>>(i), |v| json!(v)),
        Type::CHAR => opt(row.try_get::<_, Option<i8>>(i), |v| {
            json!((v as u8 as char).to_string())
        }),
        Type::FLOAT4 => opt(row.try_get::<_, Option<f32>>(i), |v| {
            float_value(f64::from(v))
        }),
        Type::FLOAT8 => opt(row.try_get::<_, Option<f64>>(i), float_value),
        Type::NUMERIC => opt(row.try_get::<_, Option<Raw>>(i), |r| {
            decode_numeric(r.0).map_or(Value::Null, Value::String)
        }),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            opt(row.try_get::<_, Option<String>>(i), Value::String)
        }
        Type::JSON | Type::JSONB => opt(row.try_get::<_, Option<Value>>(i), |v| v),
        Type::UUID => opt(row.try_get::<_, Option<uuid::Uuid>>(i), |v| {
            json!(v.to_string())
        }),
        Type::TIMESTAMPTZ => opt(row.try_get::<_, Option<time::OffsetDateTime>>(i), |v| {
            v.format(&Rfc3339).map_or(Value::Null, iso)
        }),
        Type::TIMESTAMP => opt(row.try_get::<_, Option<time::PrimitiveDateTime>>(i), |v| {
            let t = v.assume_utc().format(&Rfc3339).unwrap_or_default();
            // No offset: the server's local wall time, as stored.
            json!(t.trim_end_matches('Z'))
        }),
        Type::DATE => opt(row.try_get::<_, Option<time::Date>>(i), |v| {
            json!(v.to_string())
        }),
        Type::TIME => opt(row.try_get::<_, Option<time::Time>>(i), |v| {
            json!(v.to_string())
        }),
        Type::BYTEA => opt(row.try_get::<_, Option<Vec<u8>>>(i), |v| {
            json!(base64::engine::general_purpose::STANDARD.encode(v))
        }),
        Type::BOOL_ARRAY => opt(row.try_get::<_, Option<Vec<Option<bool>>>>(i), |v| {
            arr(v, Value::Bool)
        }),
        Type::INT2_ARRAY => opt(row.try_get::<_, Option<Vec<Option<i16>>>>(i), |v| {
            arr(v, |x| json!(x))
        }),
        Type::INT4_ARRAY => opt(row.try_get::<_, Option<Vec<Option<i32>>>>(i), |v| {
            arr(v, |x| json!(x))
        }),
        Type::INT8_ARRAY => opt(row.try_get::<_, Option<Vec<Option<i64>>>>(i), |v| {
            arr(v, |x| json!(x))
        }),
        Type::FLOAT8_ARRAY => opt(row.try_get::<_, Option<Vec<Option<f64>>>>(i), |v| {
            arr(v, float_value)
        }),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::NAME_ARRAY | Type::BPCHAR_ARRAY => {
            opt(row.try_get::<_, Option<Vec<Option<String>>>>(i), |v| {
                arr(v, Value::String)
            })
        }
        Type::JSONB_ARRAY | Type::JSON_ARRAY => {
            opt(row.try_get::<_, Option<Vec<Option<Value>>>>(i), |v| {
                arr(v, |x| x)
            })
        }
        _ => opt(row.try_get::<_, Option<Raw>>(i), |r| raw_value(ty, r.0)),
    };
    r.unwrap_or_else(|_| match row.try_get::<_, Option<Raw>>(i) {
        Ok(Some(r)) => raw_value(ty, r.0),
        _ => Value::Null,
    })
}

/// Column names made unique (a repeated name gets `_2`, `_3`…) and their type names.
fn columns(cols: &[tokio_postgres::Column]) -> (Vec<String>, Value) {
    let mut names: Vec<String> = Vec::with_capacity(cols.len());
    for c in cols {
        let mut name = c.name().to_string();
        let mut n = 2;
        while names.contains(&name) {
            name = format!("{}_{n}", c.name());
            n += 1;
        }
        names.push(name);
    }
    let described = names
        .iter()
        .zip(cols)
        .map(|(n, c)| json!({"name": n, "type": c.type_().name()}))
        .collect();
    (names, Value::Array(described))
}

/// One row as a JSON object.
fn row_json(names: &[String], cols: &[tokio_postgres::Column], row: &Row) -> String {
    let mut obj = Map::with_capacity(names.len());
    for (i, (name, col)) in names.iter().zip(cols).enumerate() {
        obj.insert(name.clone(), cell(row, i, col.type_()));
    }
    Value::Object(obj).to_string()
}

/// Runs one prepared statement inside `tx`: rows through a capped portal, or a command.
///
/// Rows are kept while they fit both `max_rows` and `capture_bytes` of JSON (the policy's
/// `[limits] capture_bytes`, so an agent's `max_rows` cannot make the host hold more): the cut
/// falls between whole rows, so a secret in a cell is either whole, and scrubbed, or absent.
pub(super) async fn run_in_tx(
    tx: &tokio_postgres::Transaction<'_>,
    st: &tokio_postgres::Statement,
    params: &[Param],
    max_rows: u32,
    capture_bytes: u64,
    label: &str,
) -> Result<Rows, PgError> {
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    let err = |e: tokio_postgres::Error| pg_err(&e, label, 0);
    if st.columns().is_empty() {
        let n = tx.execute(st, &refs).await.map_err(err)?;
        return Ok(Rows {
            columns_json: "[]".into(),
            rows_json: "[]".into(),
            truncated: false,
            affected: Some(n),
            total: None,
        });
    }
    let cap = max_rows.min(i32::MAX as u32 - 1) as i32;
    let capture = usize::try_from(capture_bytes).unwrap_or(usize::MAX);
    let (names, described) = columns(st.columns());
    let portal = tx.bind(st, &refs).await.map_err(err)?;
    let stream = tx.query_portal_raw(&portal, cap + 1).await.map_err(err)?;
    futures::pin_mut!(stream);
    let mut json = String::from("[");
    let mut kept: u64 = 0;
    let mut seen: u64 = 0;
    let mut full = false;
    while let Some(row) = stream.next().await {
        let row = row.map_err(err)?;
        seen += 1;
        // Past a cap the rest of this batch is only counted, never decoded.
        if full || kept == cap as u64 {
            continue;
        }
        let text = row_json(&names, st.columns(), &row);
        // The separating comma and the closing bracket count too.
        if json.len() + text.len() + 2 > capture {
            full = true;
            continue;
        }
        if kept > 0 {
            json.push(',');
        }
        json.push_str(&text);
        kept += 1;
    }
    json.push(']');
    let total = if seen > cap as u64 {
        let more = tx
            .query_portal_raw(&portal, COUNT_PAST_CAP)
            .await
            .map_err(err)?;
        futures::pin_mut!(more);
        let mut counted: u64 = 0;
        while let Some(r) = more.next().await {
            r.map_err(err)?;
            counted += 1;
        }
        (counted < COUNT_PAST_CAP as u64).then_some(seen + counted)
    } else {
        Some(seen)
    };
    Ok(Rows {
        columns_json: described.to_string(),
        rows_json: json,
        truncated: seen > kept,
        affected: None,
        total,
    })
}

pub(super) fn rows_detail(r: &Rows) -> String {
    match r.affected {
        Some(n) => format!("{n} affected"),
        None => format!(
            "{} rows{}",
            r.total.map_or("?".to_string(), |t| t.to_string()),
            if r.truncated { " (truncated)" } else { "" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::super::params::encode_numeric;
    use super::*;

    fn roundtrip(text: &str) -> String {
        let mut b = BytesMut::new();
        encode_numeric(text, &mut b).unwrap();
        decode_numeric(&b).unwrap()
    }

    #[test]
    fn numeric_encodes_and_decodes_exactly() {
        for (input, want) in [
            ("0", "0"),
            ("1", "1"),
            ("-12.50", "-12.50"),
            ("12345678.000123", "12345678.000123"),
            ("0.0001", "0.0001"),
            ("0.00001", "0.00001"),
            ("10000", "10000"),
            ("1e3", "1000"),
            ("1.5e-3", "0.0015"),
            ("NaN", "NaN"),
            ("99999999999999999999.99", "99999999999999999999.99"),
        ] {
            assert_eq!(roundtrip(input), want, "{input}");
        }
        assert!(encode_numeric("12a", &mut BytesMut::new()).is_err());
        assert!(encode_numeric("", &mut BytesMut::new()).is_err());
    }
}
