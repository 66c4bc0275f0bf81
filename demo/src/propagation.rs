//! W3C trace context (`traceparent`) over HTTP headers and inside events.

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::collections::HashMap;

/// Reads propagation fields from a header map.
pub(crate) struct HeaderExtractor<'a>(pub(crate) &'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Writes propagation fields into a header map (fields that are not valid headers are skipped).
pub(crate) struct HeaderInjector<'a>(pub(crate) &'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The remote parent context carried by `headers` (empty when there is none).
pub(crate) fn extract(headers: &HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Writes `cx`'s span context into `headers` as `traceparent` (and `tracestate`).
pub(crate) fn inject(cx: &Context, headers: &mut HeaderMap) {
    TraceContextPropagator::new().inject_context(cx, &mut HeaderInjector(headers));
}

/// `cx`'s span context as a `traceparent` value, if it has a valid one.
pub(crate) fn traceparent_of(cx: &Context) -> Option<String> {
    let mut fields = HashMap::new();
    TraceContextPropagator::new().inject_context(cx, &mut fields);
    fields.remove("traceparent")
}

/// The span context a `traceparent` value names, if it parses.
pub(crate) fn span_context_of(traceparent: &str) -> Option<SpanContext> {
    let mut fields = HashMap::new();
    fields.insert("traceparent".to_owned(), traceparent.to_owned());
    let cx = TraceContextPropagator::new().extract(&fields);
    let sc = cx.span().span_context().clone();
    sc.is_valid().then_some(sc)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};

    fn sample() -> SpanContext {
        SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        )
    }

    #[test]
    fn headers_round_trip() {
        let cx = Context::new().with_remote_span_context(sample());
        let mut headers = HeaderMap::new();
        inject(&cx, &mut headers);
        assert_eq!(
            headers.get("traceparent").unwrap(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        let back = extract(&headers);
        let sc = back.span().span_context().clone();
        assert_eq!(sc.trace_id(), sample().trace_id());
        assert_eq!(sc.span_id(), sample().span_id());
        assert!(sc.is_remote());
    }

    #[test]
    fn event_traceparent_round_trip() {
        let cx = Context::new().with_remote_span_context(sample());
        let tp = traceparent_of(&cx).unwrap();
        let sc = span_context_of(&tp).unwrap();
        assert_eq!(sc.trace_id(), sample().trace_id());
        assert_eq!(sc.span_id(), sample().span_id());
    }

    #[test]
    fn missing_or_broken_context_gives_nothing() {
        assert!(!extract(&HeaderMap::new()).span().span_context().is_valid());
        assert_eq!(traceparent_of(&Context::new()), None);
        assert!(span_context_of("not a traceparent").is_none());
        assert!(
            span_context_of("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none()
        );
    }
}
