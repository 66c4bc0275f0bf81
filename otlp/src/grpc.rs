//! OTLP/gRPC: the Logs, Trace and Metrics services, gzip and zstd.
//!
//! The services are written over tonic's server parts rather than generated, so that the
//! checks come in the order that protects the collector: the token and a place in flight are
//! checked on the headers, before the body is read; tonic then reads and decompresses one
//! message (at most `max_message` bytes after decompression) and hands over its bytes; the
//! cost of those bytes is measured and reserved ([`crate::admission`]) before they are decoded
//! off the async workers. A generated service decodes first and checks after.
//!
//! Status codes: UNAUTHENTICATED (token), UNAVAILABLE with `google.rpc.RetryInfo` (too many in
//! flight, or the sink cannot take it now), INVALID_ARGUMENT (malformed), RESOURCE_EXHAUSTED without retry information
//! (too large: will never fit) and RESOURCE_EXHAUSTED with `google.rpc.RetryInfo` (the memory
//! budget is in use: retry), which OTLP exporters read as retryable.

use crate::admission::{Admission, Encoding, Refusal, admit_and_decode};
use crate::auth::authorized;
use crate::sink::{ExportMeta, IngestError, Logs, Metrics, OtlpSink, Signal, Traces};
use bytes::{Buf, Bytes};
use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::Arc;
use tonic::codec::{
    Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder,
};
use tonic::codegen::{BoxFuture, Context, Poll, Service, StdError, http};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Code, Request, Response, Status};

/// The gRPC services' shared state.
#[derive(Clone)]
pub struct GrpcIngest<S> {
    ingest: S,
    token: Option<Arc<str>>,
    admission: Admission,
}

impl<S: OtlpSink> GrpcIngest<S> {
    /// Wraps the sink.
    pub fn new(ingest: S, token: Option<Arc<str>>, admission: Admission) -> Self {
        GrpcIngest {
            ingest,
            token,
            admission,
        }
    }
}

fn status(e: IngestError) -> Status {
    match e {
        IngestError::BadRequest(m) => Status::invalid_argument(m),
        IngestError::TooLarge(m) => Status::resource_exhausted(m),
        IngestError::Unavailable(m) => retry_after(Code::Unavailable, m, 1),
        IngestError::Internal(m) => retry_after(Code::Unavailable, format!("{m}; retry later"), 1),
    }
}

/// `google.rpc.Status`, to carry [`RetryInfo`] in `grpc-status-details-bin`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types_any::Any>,
}

/// The few well-known types the status details need, written out here.
mod prost_types_any {
    /// `google.protobuf.Any`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(string, tag = "1")]
        pub type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }
    /// `google.protobuf.Duration`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Duration {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
    /// `google.rpc.RetryInfo`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RetryInfo {
        #[prost(message, optional, tag = "1")]
        pub retry_delay: Option<Duration>,
    }
}

/// RESOURCE_EXHAUSTED that tells the client to retry after `seconds`.
fn retry_later(message: String, seconds: i64) -> Status {
    retry_after(Code::ResourceExhausted, message, seconds)
}

/// `code` with a RetryInfo of `seconds`, as OTLP asks of a server that is throttling: every
/// refusal that a retry can cure carries one, like Retry-After on HTTP.
fn retry_after(code: Code, message: String, seconds: i64) -> Status {
    use prost::Message;
    let info = prost_types_any::RetryInfo {
        retry_delay: Some(prost_types_any::Duration { seconds, nanos: 0 }),
    };
    let details = RpcStatus {
        code: code as i32,
        message: message.clone(),
        details: vec![prost_types_any::Any {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
            value: info.encode_to_vec(),
        }],
    };
    Status::with_details(code, message, Bytes::from(details.encode_to_vec()))
}

fn refused(r: Refusal) -> Status {
    match r {
        Refusal::Malformed(m) => Status::invalid_argument(m),
        Refusal::TooLarge(m) => Status::resource_exhausted(m),
        Refusal::Busy(m) => retry_later(m, 1),
    }
}

/// Hands tonic's decompressed message bytes over undecoded; encodes the response.
struct RawCodec<R>(PhantomData<fn() -> R>);

struct RawEncoder<R>(PhantomData<fn() -> R>);

struct RawDecoder;

impl<R: prost::Message + Send + 'static> Codec for RawCodec<R> {
    type Encode = R;
    type Decode = Bytes;
    type Encoder = RawEncoder<R>;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> Self::Encoder {
        RawEncoder(PhantomData)
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

impl<R: prost::Message> Encoder for RawEncoder<R> {
    type Item = R;
    type Error = Status;
    fn encode(&mut self, item: R, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encoding the answer: {e}")))
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// One export call: holds the place in flight until it is answered.
struct Export<G, S> {
    state: GrpcIngest<S>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    _signal: PhantomData<fn() -> G>,
}

impl<G: Signal, S: OtlpSink> UnaryService<Bytes> for Export<G, S> {
    type Response = G::Response;
    type Future = BoxFuture<Response<G::Response>, Status>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let state = self.state.clone();
        let permit = self.permit.take();
        Box::pin(async move {
            let _permit = permit;
            let batch_id = match request.metadata().get(skein_model::batch_id::HEADER) {
                None => None,
                Some(v) => Some(
                    v.to_str()
                        .map_err(|_| "the skein-batch-id metadata is not ASCII".to_string())
                        .and_then(skein_model::batch_id::BatchId::parse)
                        .map_err(|e| {
                            state.ingest.bad_request(G::NAME);
                            Status::invalid_argument(e)
                        })?,
                ),
            };
            let body = request.into_inner().to_vec();
            let meta = ExportMeta {
                wire_bytes: body.len(),
                batch_id,
            };
            let (req, _budget) =
                match admit_and_decode::<G>(&state.admission, Encoding::Protobuf, body).await {
                    Ok(r) => r,
                    Err(r) => {
                        state.ingest.refused(G::NAME, &r);
                        return Err(refused(r));
                    }
                };
            let accepted = G::export(&state.ingest, req, meta).await.map_err(status)?;
            Ok(Response::new(G::response(accepted)))
        })
    }
}

/// The gRPC service of one signal.
pub struct SignalService<G, S> {
    state: GrpcIngest<S>,
    max_message: usize,
    _signal: PhantomData<fn() -> G>,
}

impl<G, S: Clone> Clone for SignalService<G, S> {
    fn clone(&self) -> Self {
        SignalService {
            state: self.state.clone(),
            max_message: self.max_message,
            _signal: PhantomData,
        }
    }
}

impl<G: Signal, S> NamedService for SignalService<G, S> {
    const NAME: &'static str = G::GRPC_SERVICE;
}

impl<G, S, B> Service<http::Request<B>> for SignalService<G, S>
where
    G: Signal,
    S: OtlpSink,
    B: http_body::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let state = self.state.clone();
        let max_message = self.max_message;
        Box::pin(async move {
            if req.uri().path().strip_suffix("/Export") != Some(&format!("/{}", G::GRPC_SERVICE)) {
                return Ok(Status::unimplemented("no such method").into_http());
            }
            // Checked on the headers, before the body is read or decompressed.
            if !authorized(req.headers(), state.token.as_deref()) {
                return Ok(Status::unauthenticated(
                    "missing or wrong bearer token: send authorization: Bearer <ingest token>",
                )
                .into_http());
            }
            let permit = match state.ingest.admit(G::NAME) {
                Ok(p) => p,
                Err(why) => return Ok(retry_after(Code::Unavailable, why, 1).into_http()),
            };
            let mut accept = EnabledCompressionEncodings::default();
            accept.enable(CompressionEncoding::Gzip);
            accept.enable(CompressionEncoding::Zstd);
            let mut grpc = Grpc::new(RawCodec::<G::Response>(PhantomData))
                .apply_compression_config(accept, EnabledCompressionEncodings::default())
                .apply_max_message_size_config(Some(max_message), None);
            let export = Export::<G, S> {
                state,
                permit: Some(permit),
                _signal: PhantomData,
            };
            Ok(grpc.unary(export, req).await)
        })
    }
}

/// The three OTLP gRPC services over one sink.
pub type Services<S> = (
    SignalService<Logs, S>,
    SignalService<Traces, S>,
    SignalService<Metrics, S>,
);

/// The three services; `max_message` bounds a message after decompression.
pub fn services<S: OtlpSink>(svc: GrpcIngest<S>, max_message: usize) -> Services<S> {
    (
        service(svc.clone(), max_message),
        service(svc.clone(), max_message),
        service(svc, max_message),
    )
}

fn service<G: Signal, S: OtlpSink>(
    state: GrpcIngest<S>,
    max_message: usize,
) -> SignalService<G, S> {
    SignalService {
        state,
        max_message,
        _signal: PhantomData,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use prost::Message;

    /// The retry delay in a status's details, if it carries a RetryInfo.
    fn retry_delay(s: &Status) -> Option<i64> {
        let details = RpcStatus::decode(s.details()).ok()?;
        let any = details
            .details
            .iter()
            .find(|a| a.type_url.ends_with("google.rpc.RetryInfo"))?;
        let info = prost_types_any::RetryInfo::decode(any.value.as_slice()).ok()?;
        Some(info.retry_delay?.seconds)
    }

    #[test]
    fn every_refusal_a_retry_can_cure_carries_retry_info() {
        let busy = status(IngestError::Unavailable("queue full".into()));
        assert_eq!(busy.code(), Code::Unavailable);
        assert_eq!(retry_delay(&busy), Some(1));
        let internal = status(IngestError::Internal("disk".into()));
        assert_eq!(retry_delay(&internal), Some(1));
        let budget = refused(Refusal::Busy("memory budget".into()));
        assert_eq!(budget.code(), Code::ResourceExhausted);
        assert_eq!(retry_delay(&budget), Some(1));
        // What a retry cannot cure says nothing of retrying.
        assert_eq!(
            retry_delay(&status(IngestError::TooLarge("big".into()))),
            None
        );
        assert_eq!(
            retry_delay(&status(IngestError::BadRequest("bad".into()))),
            None
        );
    }
}
