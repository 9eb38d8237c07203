//! Parameters: a JSON array, bound with the types the server inferred for `$1…$n`.

use base64::Engine as _;
use bytes::{BufMut, BytesMut};
use postgres_types::{IsNull, ToSql, Type, to_sql_checked};
use serde_json::Value;

use super::invalid;
use crate::caps::infra::host::postgres::PgError;

/// Parses `params-json`: empty text or a JSON array.
pub(super) fn parse_params(text: &str) -> Result<Vec<Value>, PgError> {
    if text.trim().is_empty() {
        return Ok(vec![]);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(a)) => Ok(a),
        Ok(_) => Err(invalid(
            "params: must be a JSON array, one value per $n placeholder",
        )),
        Err(e) => Err(invalid(format!("params: not JSON: {e}"))),
    }
}

/// The parameters converted to the statement's types.
pub(super) fn bind_params(
    st: &tokio_postgres::Statement,
    values: &[Value],
) -> Result<Vec<Param>, PgError> {
    let types = st.params();
    if types.len() != values.len() {
        return Err(invalid(format!(
            "params: the statement has {} placeholder(s) ($1…${}) but {} value(s) were given",
            types.len(),
            types.len(),
            values.len()
        )));
    }
    types
        .iter()
        .zip(values)
        .enumerate()
        .map(|(i, (ty, v))| {
            param(ty, v).map_err(|why| {
                invalid(format!(
                    "params[{i}] (${}, type {}): {why}",
                    i + 1,
                    ty.name()
                ))
            })
        })
        .collect()
}

/// A parameter value of the type the statement expects.
#[derive(Debug)]
pub(super) enum Param {
    Null,
    Bool(bool),
    I16(i16),
    I32(i32),
    I64(i64),
    U32(u32),
    F32(f32),
    F64(f64),
    /// A validated decimal, encoded to numeric's binary form.
    Numeric(String),
    Text(String),
    Json(Value),
    Uuid(uuid::Uuid),
    TimestampTz(time::OffsetDateTime),
    Timestamp(time::PrimitiveDateTime),
    Date(time::Date),
    Time(time::Time),
    Bytes(Vec<u8>),
    TextArray(Vec<Option<String>>),
    I32Array(Vec<Option<i32>>),
    I64Array(Vec<Option<i64>>),
    /// A type infra has no encoder for: its text, sent as the binary value (right for enums
    /// and text-like extension types; the server refuses others with SQLSTATE 22P03).
    Raw(String),
}

impl ToSql for Param {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Null => Ok(IsNull::Yes),
            Param::Bool(v) => v.to_sql(ty, out),
            Param::I16(v) => v.to_sql(ty, out),
            Param::I32(v) => v.to_sql(ty, out),
            Param::I64(v) => v.to_sql(ty, out),
            Param::U32(v) => v.to_sql(ty, out),
            Param::F32(v) => v.to_sql(ty, out),
            Param::F64(v) => v.to_sql(ty, out),
            Param::Numeric(s) => {
                encode_numeric(s, out)?;
                Ok(IsNull::No)
            }
            Param::Text(v) => v.to_sql(ty, out),
            Param::Json(v) => v.to_sql(ty, out),
            Param::Uuid(v) => v.to_sql(ty, out),
            Param::TimestampTz(v) => v.to_sql(ty, out),
            Param::Timestamp(v) => v.to_sql(ty, out),
            Param::Date(v) => v.to_sql(ty, out),
            Param::Time(v) => v.to_sql(ty, out),
            Param::Bytes(v) => v.to_sql(ty, out),
            Param::TextArray(v) => v.to_sql(ty, out),
            Param::I32Array(v) => v.to_sql(ty, out),
            Param::I64Array(v) => v.to_sql(ty, out),
            Param::Raw(s) => {
                out.put_slice(s.as_bytes());
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_: &Type) -> bool {
        // The variant was chosen from the statement's type in `param`.
        true
    }

    to_sql_checked!();
}

fn int_of(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| format!("{n} is not an integer")),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("'{s}' is not an integer")),
        other => Err(format!("expected an integer, got {other}")),
    }
}

fn float_of(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("{n} is not a number")),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("'{s}' is not a number")),
        other => Err(format!("expected a number, got {other}")),
    }
}

fn str_of(v: &Value) -> Result<&str, String> {
    v.as_str()
        .ok_or_else(|| format!("expected a string, got {v}"))
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn parse_timestamp(s: &str) -> Result<time::PrimitiveDateTime, String> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        let utc = t.to_offset(time::UtcOffset::UTC);
        return Ok(time::PrimitiveDateTime::new(utc.date(), utc.time()));
    }
    let fmt = time::format_description::parse_borrowed::<1>(
        "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]",
    )
    .map_err(|e| e.to_string())?;
    time::PrimitiveDateTime::parse(&s.replacen('T', " ", 1), &fmt).map_err(|e| {
        format!("'{s}' is not a timestamp ({e}); write it as 2024-01-31 12:00:00[.ffffff]")
    })
}

/// Converts one JSON value to the parameter type `ty`.
fn param(ty: &Type, v: &Value) -> Result<Param, String> {
    use time::format_description::well_known::Rfc3339;
    if v.is_null() {
        return Ok(Param::Null);
    }
    let range = |n: i64, what: &str| format!("{n} is out of range for {what}");
    Ok(match *ty {
        Type::BOOL => match v {
            Value::Bool(b) => Param::Bool(*b),
            Value::String(s) if matches!(s.as_str(), "true" | "t" | "false" | "f") => {
                Param::Bool(s.starts_with('t'))
            }
            other => return Err(format!("expected true or false, got {other}")),
        },
        Type::INT2 => {
            let n = int_of(v)?;
            Param::I16(i16::try_from(n).map_err(|_| range(n, "int2"))?)
        }
        Type::INT4 => {
            let n = int_of(v)?;
            Param::I32(i32::try_from(n).map_err(|_| range(n, "int4"))?)
        }
        Type::INT8 => Param::I64(int_of(v)?),
        Type::OID => {
            let n = int_of(v)?;
            Param::U32(u32::try_from(n).map_err(|_| range(n, "oid"))?)
        }
        Type::FLOAT4 => Param::F32(float_of(v)? as f32),
        Type::FLOAT8 => Param::F64(float_of(v)?),
        Type::NUMERIC => {
            let text = match v {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.trim().to_string(),
                other => {
                    return Err(format!(
                        "expected a number or a decimal string, got {other}"
                    ));
                }
            };
            encode_numeric(&text, &mut BytesMut::new())?;
            Param::Numeric(text)
        }
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            Param::Text(text_of(v))
        }
        Type::JSON | Type::JSONB => Param::Json(v.clone()),
        Type::UUID => {
            let s = str_of(v)?;
            Param::Uuid(uuid::Uuid::parse_str(s).map_err(|e| format!("'{s}' is not a UUID: {e}"))?)
        }
        Type::TIMESTAMPTZ => {
            let s = str_of(v)?;
            Param::TimestampTz(time::OffsetDateTime::parse(s, &Rfc3339).map_err(|e| {
                format!("'{s}' is not an RFC 3339 time ({e}); write it as 2024-01-31T12:00:00Z")
            })?)
        }
        Type::TIMESTAMP => Param::Timestamp(parse_timestamp(str_of(v)?)?),
        Type::DATE => {
            let s = str_of(v)?;
            let fmt = time::format_description::parse_borrowed::<1>("[year]-[month]-[day]")
                .map_err(|e| e.to_string())?;
            Param::Date(
                time::Date::parse(s, &fmt)
                    .map_err(|e| format!("'{s}' is not a date ({e}); write it as 2024-01-31"))?,
            )
        }
        Type::TIME => {
            let s = str_of(v)?;
            let fmt = time::format_description::parse_borrowed::<1>(
                "[hour]:[minute]:[second][optional [.[subsecond]]]",
            )
            .map_err(|e| e.to_string())?;
            Param::Time(
                time::Time::parse(s, &fmt)
                    .map_err(|e| format!("'{s}' is not a time ({e}); write it as 12:00:00"))?,
            )
        }
        Type::BYTEA => {
            let s = str_of(v)?;
            Param::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|e| format!("bytea parameters are base64: {e}"))?,
            )
        }
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY => {
            let a = v.as_array().ok_or("expected an array of strings")?;
            Param::TextArray(
                a.iter()
                    .map(|x| (!x.is_null()).then(|| text_of(x)))
                    .collect(),
            )
        }
        Type::INT4_ARRAY => {
            let a = v.as_array().ok_or("expected an array of integers")?;
            let mut out = Vec::with_capacity(a.len());
            for x in a {
                out.push(match x {
                    Value::Null => None,
                    x => {
                        let n = int_of(x)?;
                        Some(i32::try_from(n).map_err(|_| range(n, "int4"))?)
                    }
                });
            }
            Param::I32Array(out)
        }
        Type::INT8_ARRAY => {
            let a = v.as_array().ok_or("expected an array of integers")?;
            let mut out = Vec::with_capacity(a.len());
            for x in a {
                out.push(if x.is_null() { None } else { Some(int_of(x)?) });
            }
            Param::I64Array(out)
        }
        _ => match v {
            Value::String(s) => Param::Raw(s.clone()),
            other => {
                return Err(format!(
                    "infra binds this type only from a string (sent as its text), got {other}; \
                     or cast the placeholder in SQL, e.g. $1::text::{}",
                    ty.name()
                ));
            }
        },
    })
}

/// Encodes a decimal (`-12.50`, `1e3`, `NaN`) in numeric's binary form.
pub(super) fn encode_numeric(text: &str, out: &mut BytesMut) -> Result<(), String> {
    let bad = || format!("'{text}' is not a decimal number");
    if text.eq_ignore_ascii_case("nan") {
        out.put_i16(0);
        out.put_i16(0);
        out.put_u16(0xC000);
        out.put_u16(0);
        return Ok(());
    }
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i32>().map_err(|_| bad())?),
        None => (body, 0),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((a, b)) => (a, b),
        None => (mantissa, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
        || exp.abs() > 1000
    {
        return Err(bad());
    }
    // All digits, and where the decimal point falls among them.
    let digits: Vec<u8> = int_part
        .bytes()
        .chain(frac_part.bytes())
        .map(|b| b - b'0')
        .collect();
    let point = int_part.len() as i64 + i64::from(exp);
    let dscale = (digits.len() as i64 - point).max(0);
    // Align to base-10000 groups: pad so the point sits on a group boundary.
    let lead = (4 - point.rem_euclid(4)) % 4;
    let mut padded = vec![0u8; lead as usize];
    padded.extend(&digits);
    while !padded.len().is_multiple_of(4) {
        padded.push(0);
    }
    let int_groups = (point + lead) / 4;
    let mut groups: Vec<i16> = padded
        .chunks(4)
        .map(|c| c.iter().fold(0i16, |a, d| a * 10 + i16::from(*d)))
        .collect();
    let mut weight = int_groups - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let weight = i16::try_from(weight).map_err(|_| bad())?;
    out.put_i16(groups.len() as i16);
    out.put_i16(weight);
    out.put_u16(if neg && !groups.is_empty() { 0x4000 } else { 0 });
    out.put_u16(u16::try_from(dscale).map_err(|_| bad())?);
    for g in groups {
        out.put_i16(g);
    }
    Ok(())
}
