import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import TollgateDomain
import TollgateStorage

/// One request's path through the data plane, top to bottom:
/// authenticate → authorize → limit + reserve → forward → meter → settle.
struct ProxyPipeline: Sendable {
    let configuration: ProxyConfiguration
    let authenticator: Authenticator
    let planner: HoldPlanner
    let admission: any AdmissionGate
    let vault: CredentialVault
    let forwarder: Forwarder
    let settlements: SettlementQueue
    let logger: Logger

    /// `loop`: the event loop of the caller's connection; the upstream call stays on it.
    func handle(_ request: Request, loop: (any EventLoop)? = nil) async -> Response {
        // Time-ordered: it becomes the usage ledger's primary key (see UUID.timeOrdered).
        let requestID = UUID.timeOrdered()
        let started = ContinuousClock.now
        ProxyMetrics.requestStarted()
        defer { ProxyMetrics.requestFinished() }
        let route = ProxyRoutes.route(method: request.method, path: request.uri.path)
        let response: Response
        do {
            response = try await process(request, route: route, requestID: requestID, started: started, loop: loop)
        } catch let error as ProxyError {
            ProxyMetrics.rejection(error.code)
            response = error.response(requestID: requestID.apiString)
        } catch {
            logger.error("proxy request failed", metadata: ["request_id": "\(requestID.apiString)", "error": "\(type(of: error))"])
            response = ProxyError.upstream(.badGateway, "The gateway failed to handle the request.").response(requestID: requestID.apiString)
        }
        // Streamed responses are still running here: this measures time to headers.
        ProxyMetrics.request(endpoint: route?.family.rawValue ?? "unknown", model: nil, status: Int(response.status.code), duration: ContinuousClock.now - started)
        return response
    }

    private func process(_ request: Request, route: ProxyRoute?, requestID: UUID, started: ContinuousClock.Instant,
                         loop: (any EventLoop)?) async throws -> Response {
        let path = request.uri.path
        guard let route else { throw ProxyError.notFound(path) }

        // 1. Authenticate.
        let key = try await authenticator.authenticate(request.headers)

        // Body: bounded, then validated before anything else looks at it.
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: configuration.maxBodyBytes)
        } catch is RequestBodyTimeout {
            throw ProxyError.requestTimeout(limit: configuration.bodyTimeout)
        } catch {
            throw ProxyError.tooLarge(limit: configuration.maxBodyBytes)
        }
        let metadata = try Self.clientMetadata(request.headers)
        let pathAndQuery = request.uri.query.map { "\(path)?\($0)" } ?? path

        switch route.kind {
        case .passThrough:
            // 2. Authorize (endpoint allow-list); nothing to reserve or bill.
            try Authorizer.authorize(key, family: route.family, model: nil)
            let credentials = try await vault.credentials(for: key)
            let upstream = try await forwarder.forward(method: request.method, pathAndQuery: pathAndQuery, headers: request.headers,
                                                       body: body.readableBytes > 0 ? body : nil, credentials: credentials,
                                                       requestID: requestID.apiString, loop: loop)
            return relayUnmetered(upstream, requestID: requestID)
        case .metered, .meteredByPage:
            // 2. Authorize, and work out the hold: the worst case this request can cost.
            let plan = try await planner.plan(route: route, path: path, body: body, key: key)

            // 3. Limit + reserve, atomically, durable before forwarding.
            let reservation = ReservationRequest(
                requestID: requestID, keyID: key.keyID, hold: plan.hold, tokens: plan.tokens, proxyID: configuration.proxyID,
                ttlSeconds: configuration.holdTTLSeconds, endpoint: route.family.rawValue, model: plan.model,
                metadataJSON: metadata.json, traceparent: metadata.traceparent)
            let reserveStart = ContinuousClock.now
            let admission = try await reserve(reservation, started: started)
            ProxyMetrics.reservation(ContinuousClock.now - reserveStart)
            if let refusal = admission.outcome.refusal(currency: key.currency) { throw refusal }
            let limits = RateLimitHeaders(key: key, outcome: admission.outcome)

            // From here on the request holds budget: whatever happens, it settles exactly once
            // (by its hold's id; a ticket's ledger row still takes this request's id and details).
            let ledger = admission.onTicket
                ? LedgerDetail(requestID: requestID, startedAt: Date() - (ContinuousClock.now - started).timeInterval,
                               endpoint: reservation.endpoint, model: reservation.model, metadataJSON: reservation.metadataJSON,
                               traceparent: reservation.traceparent)
                : nil
            let settlement = PendingSettlement(requestID: admission.holdID, ledger: ledger, tenantID: key.tenantID,
                                               model: plan.model, price: plan.price,
                                               worstCase: plan.worstCase, repricing: plan.priceOfAnsweringModel,
                                               started: started, queue: settlements, logger: logger)
            // 4. Forward.
            let upstream: UpstreamResponse
            do {
                let credentials = try await vault.credentials(for: key)
                upstream = try await forwarder.forward(method: request.method, pathAndQuery: pathAndQuery, headers: request.headers,
                                                       body: plan.forwardBody, credentials: credentials, requestID: requestID.apiString,
                                                       loop: loop)
            } catch {
                await settlement.settle(usage: Usage(), statusCode: (error as? ProxyError).map { Int($0.status.code) } ?? 502,
                                        estimated: false, credentialID: nil, upstreamLatency: nil)
                throw error
            }
            ProxyMetrics.upstream(endpoint: route.family.rawValue, status: upstream.status, firstByte: upstream.firstByteLatency)
            // 5 + 6. Meter and settle (streamed or not).
            if plan.stream, upstream.status == 200 {
                return relayStream(upstream, settlement: settlement, maxCompletion: plan.maxCompletion, requestID: requestID, limits: limits)
            }
            return try await relayBuffered(upstream, settlement: settlement, requestID: requestID, limits: limits)
        }
    }

    /// Stage 3's call. A failed reservation may still have committed before the failure was seen
    /// (a lost connection, a deadline): a zero-cost release settles it if so and does nothing
    /// otherwise, so it is not left for the reaper to charge in full.
    private func reserve(_ reservation: ReservationRequest, started: ContinuousClock.Instant) async throws -> Admission {
        do {
            return try await admission.admission(for: reservation)
        } catch {
            settlements.submit(Settlement(requestID: reservation.requestID, cost: .zero, usage: Usage(), statusCode: 503,
                                          estimated: false, credentialID: nil, upstreamLatencyMs: nil,
                                          totalLatencyMs: (ContinuousClock.now - started).milliseconds))
            throw error
        }
    }

    /// Non-streamed: read the whole response (bounded), take `usage`, settle, answer.
    private func relayBuffered(_ upstream: UpstreamResponse, settlement: PendingSettlement, requestID: UUID,
                               limits: RateLimitHeaders) async throws -> Response {
        var collected = ByteBuffer()
        do {
            for try await chunk in upstream.body {
                guard collected.readableBytes + chunk.readableBytes <= configuration.maxResponseBytes else {
                    throw ProxyError.upstream(.badGateway, "Mistral's response exceeded \(configuration.maxResponseBytes) bytes.")
                }
                var chunk = chunk
                collected.writeBuffer(&chunk)
            }
        } catch {
            // Cut off mid-body: the conservative estimate (the whole hold) is charged.
            await settlement.settleWorstCase(statusCode: 502, credentialID: upstream.credentialID, upstreamLatency: upstream.firstByteLatency)
            throw (error as? ProxyError) ?? ProxyError.upstream(.badGateway, "Mistral's response was cut off.")
        }
        if upstream.status == 200 {
            if let usage = BodyInspection.usage(in: collected) {
                await settlement.settle(usage: usage, statusCode: 200, estimated: false, credentialID: upstream.credentialID,
                                        upstreamLatency: upstream.firstByteLatency,
                                        answeredModel: settlement.needsAnsweredModel ? BodyInspection.answeredModel(in: collected) : nil)
            } else {
                await settlement.settleWorstCase(statusCode: 200, credentialID: upstream.credentialID,
                                                 upstreamLatency: upstream.firstByteLatency)
            }
        } else {
            // Upstream errors pass through unchanged and cost nothing.
            await settlement.settle(usage: Usage(), statusCode: upstream.status, estimated: false,
                                    credentialID: upstream.credentialID, upstreamLatency: upstream.firstByteLatency)
        }
        var headers = Self.responseHeaders(upstream.headers, requestID: requestID)
        limits.apply(to: &headers)
        return Response(status: .init(code: upstream.status), headers: headers, body: .init(byteBuffer: collected))
    }

    /// Streamed: relay each chunk as it arrives, scanning for `usage`; settle when the stream ends,
    /// is cut, or the client goes away (then the upstream request is cancelled with the task).
    private func relayStream(_ upstream: UpstreamResponse, settlement: PendingSettlement, maxCompletion: Int,
                             requestID: UUID, limits: RateLimitHeaders) -> Response {
        var headers = Self.responseHeaders(upstream.headers, requestID: requestID)
        limits.apply(to: &headers)
        // A stalled stream is cut by the forwarder's idle timeout between chunks: the loop below
        // then ends with an error and the request settles as truncated.
        let body = ResponseBody { writer in
            var scanner = StreamMeter()
            var clientGone = false
            var upstreamCut = false
            do {
                for try await chunk in upstream.body {
                    scanner.feed(chunk)
                    do {
                        try await writer.write(chunk)
                    } catch {
                        // Leaving the loop drops the upstream body, which cancels the request.
                        clientGone = true
                        break
                    }
                }
            } catch {
                upstreamCut = true
            }
            if let usage = scanner.usage, !clientGone {
                await settlement.settle(usage: usage, statusCode: 200, estimated: false, credentialID: upstream.credentialID,
                                        upstreamLatency: upstream.firstByteLatency, answeredModel: scanner.model)
            } else if clientGone {
                await settlement.settle(usage: scanner.estimate(maxCompletion: maxCompletion, worstCase: settlement.worstCase),
                                        statusCode: 499, estimated: true, credentialID: upstream.credentialID,
                                        upstreamLatency: upstream.firstByteLatency)
            } else {
                // Ended without usage (truncated): the conservative estimate.
                await settlement.settleWorstCase(statusCode: upstreamCut ? 502 : 200, credentialID: upstream.credentialID,
                                                 upstreamLatency: upstream.firstByteLatency)
            }
            if !clientGone { try await writer.finish(nil) }
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    private func relayUnmetered(_ upstream: UpstreamResponse, requestID: UUID) -> Response {
        let headers = Self.responseHeaders(upstream.headers, requestID: requestID)
        let body = ResponseBody { writer in
            for try await chunk in upstream.body { try await writer.write(chunk) }
            try await writer.finish(nil)
        }
        return Response(status: .init(code: upstream.status), headers: headers, body: body)
    }

    /// Upstream response headers the client sees: content headers and Mistral's ids, not its
    /// per-account rate-limit headers (the key's own are sent instead) nor hop-by-hop ones.
    static func responseHeaders(_ upstream: HTTPHeaders, requestID: UUID) -> HTTPFields {
        var fields = HTTPFields()
        for (name, value) in upstream {
            // Compared without lowercasing (no string built per header).
            guard let field = relayedResponseHeaders.first(where: { Self.asciiCaseInsensitiveEqual($0.canonicalName, name) })
            else { continue }
            fields.append(HTTPField(name: field, value: value))
        }
        fields[.xRequestID] = requestID.apiString
        return fields
    }

    /// `lowercase` must be lowercase ASCII already (a canonical header name).
    static func asciiCaseInsensitiveEqual(_ lowercase: String, _ other: String) -> Bool {
        lowercase.utf8.count == other.utf8.count
            && zip(lowercase.utf8, other.utf8).allSatisfy { $0 == ($1 >= 0x41 && $1 <= 0x5A ? $1 | 0x20 : $1) }
    }

    private static let relayedResponseHeaders: [HTTPField.Name] = [.contentType, .init("mistral-correlation-id")!, .cacheControl]

    /// `x-tollgate-metadata` (a JSON object, at most 4 KB) and `traceparent`, recorded in the ledger.
    static func clientMetadata(_ headers: HTTPFields) throws -> (json: String?, traceparent: String?) {
        var json: String?
        if let text = headers[.xTollgateMetadata] {
            guard text.utf8.count <= 4096 else {
                throw ProxyError.badRequest("metadata_too_large", "x-tollgate-metadata is limited to 4096 bytes.")
            }
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)), object is [String: Any] else {
                throw ProxyError.badRequest("invalid_metadata", "x-tollgate-metadata must be a JSON object.")
            }
            json = text
        }
        let traceparent = headers[.traceparent].flatMap { $0.count <= 128 ? $0 : nil }
        return (json, traceparent)
    }
}

/// The key's remaining allowance, sent on every metered response.
struct RateLimitHeaders: Sendable {
    let key: ResolvedKey
    let outcome: ReservationOutcome

    func apply(to headers: inout HTTPFields) {
        guard case .admitted(let requests, let tokens) = outcome else { return }
        // Capped at the limit: on admission tickets the figure adds the replica's unused tickets
        // to the database's room, which the rate may already have refilled.
        if let limit = key.rateLimits.requestsPerMinute {
            headers[.rateLimitLimitRequests] = "\(limit)"
            if let requests { headers[.rateLimitRemainingRequests] = "\(min(Int64(limit), max(0, requests)))" }
        }
        if let limit = key.rateLimits.tokensPerMinute {
            headers[.rateLimitLimitTokens] = "\(limit)"
            if let tokens { headers[.rateLimitRemainingTokens] = "\(min(Int64(limit), max(0, tokens)))" }
        }
    }
}

extension Duration {
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
    var milliseconds: Int { Int(nanoseconds / 1_000_000) }
    var timeInterval: TimeInterval { Double(nanoseconds) / 1e9 }
}
