import HTTPTypes
import Hummingbird
import NIOCore

/// The request pipeline for Mistral paths:
/// log-relevant facts → route (404/405) → auth (401) → fault (consumed only by authenticated
/// requests, as Kong authenticates before rate limiting) → validation and the endpoint → log,
/// stats, latency → response head → body (streams paced by `streamChunkDelay`).
extension MockMistral {
    private struct Outcome {
        var status: HTTPResponse.Status
        var body: EndpointResult.Body
        var usage: MockUsage?
        var fault: Fault?
        /// Kong-generated answers (401/404/405) carry no rate-limit headers.
        var rateLimited = true
    }

    func respond(to request: Request, context: MockRequestContext) async throws -> Response {
        let path = request.uri.path
        if path == "/_mock" || path.hasPrefix("/_mock/") {
            return await controlResponse(to: request)
        }
        let configuration = self.configuration
        let receivedAt = WallClock.now()
        let requestID = Identifiers.hex32()
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: configuration.maxBodyBytes)
        } catch {
            let outcome = Outcome(status: .contentTooLarge, body: .json(ErrorBodies.envelope(message: "Request body too large", type: "invalid_request_error")),
                                  rateLimited: false)
            return finish(outcome, request: request, body: ByteBuffer(), apiKey: nil, route: nil, receivedAt: receivedAt, requestID: requestID, configuration: configuration, channel: context.channel)
        }
        let apiKey = Self.bearerKey(in: request.headers)

        var outcome: Outcome
        var matchedRoute: Route?
        switch Route.match(method: request.method, path: path) {
        case .notFound:
            outcome = Outcome(status: .notFound, body: .json(ErrorBodies.envelope(message: "Not Found", type: "invalid_request_error")), rateLimited: false)
        case .methodNotAllowed:
            outcome = Outcome(status: .methodNotAllowed, body: .json(ErrorBodies.envelope(message: "Method Not Allowed", type: "invalid_request_error")), rateLimited: false)
        case .route(let route):
            matchedRoute = route
            if !Self.isAuthorized(apiKey, configuration: configuration) {
                outcome = Outcome(status: .unauthorized, body: .json(ErrorBodies.unauthorized(requestID: requestID)), rateLimited: false)
                break
            }
            let bytes = route.hasJSONBody ? Array(body.readableBytesView) : []
            var document: Result<JSONDocument, JSONParseError>?
            if route.hasJSONBody {
                do { document = .success(try JSONDocument(bytes: bytes)) } catch { document = .failure(error) }
            }
            let streaming = route.canStream && ((try? document?.get())?.root["stream"]?.bool ?? false)
            let fault = faults.take(path: path, streaming: streaming)
            switch fault {
            case .rateLimited?:
                outcome = Outcome(status: .tooManyRequests, body: .json(ErrorBodies.rateLimited()), fault: fault)
            case .serverError(let status)?:
                outcome = Outcome(status: HTTPResponse.Status(code: status), body: .json(ErrorBodies.serverError(status: status, requestID: requestID)), fault: fault)
            case .resetBeforeHeaders?:
                record(request: request, body: body, apiKey: apiKey, route: route, status: nil, outcome: nil, fault: fault, receivedAt: receivedAt)
                await ConnectionFaults.reset(context.channel)
                throw MockConnectionDropped()
            default:
                outcome = endpointOutcome(route: route, document: document, bytes: bytes, configuration: configuration)
                outcome.fault = fault
            }
        }

        let response = finish(outcome, request: request, body: body, apiKey: apiKey, route: matchedRoute, receivedAt: receivedAt,
                              requestID: requestID, configuration: configuration, channel: context.channel)
        var delay = configuration.latency
        if case .slowFirstByte(let extra)? = outcome.fault { delay += extra }
        if delay > .zero { try await Task.sleep(for: delay) }
        return response
    }

    private func endpointOutcome(route: Route, document: Result<JSONDocument, JSONParseError>?, bytes: [UInt8],
                                 configuration: MockMistralConfiguration) -> Outcome {
        let context = EndpointContext(configuration: configuration, conversations: conversations)
        do {
            let parsed: JSONDocument?
            switch document {
            case .success(let value)?: parsed = value
            case .failure(let error)?:
                let (status, buffer) = ErrorResponses.invalidJSON(error, source: bytes, style: configuration.validationErrorStyle)
                return Outcome(status: HTTPResponse.Status(code: status), body: .json(buffer))
            case nil: parsed = nil
            }
            let result = try context.handle(route, document: parsed)
            return Outcome(status: result.status, body: result.body, usage: result.usage)
        } catch {
            let (status, buffer) = ErrorResponses.render(error, source: bytes, style: configuration.validationErrorStyle)
            return Outcome(status: HTTPResponse.Status(code: status), body: .json(buffer))
        }
    }

    /// Records the request, counts it, and builds the response (head now, stream body later).
    private func finish(_ outcome: Outcome, request: Request, body: ByteBuffer, apiKey: String?, route: Route?,
                        receivedAt: Double, requestID: String, configuration: MockMistralConfiguration, channel: any Channel) -> Response {
        var headers = HTTPFields()
        headers.reserveCapacity(16)
        switch outcome.body {
        case .json(let buffer):
            headers[.contentType] = "application/json"
            headers[.contentLength] = String(buffer.readableBytes)
        case .stream:
            headers[.contentType] = "text/event-stream"
            headers[.cacheControl] = "no-cache"
        }
        if outcome.rateLimited {
            let cost = outcome.usage?.totalTokens ?? 0
            let snapshot = rateLimits.consume(key: apiKey ?? "", tokens: cost, policy: configuration.rateLimits, now: receivedAt)
            headers.addRateLimitHeaders(policy: configuration.rateLimits, snapshot: snapshot, queryCost: cost)
            if case .rateLimited(let seconds)? = outcome.fault {
                headers[.retryAfter] = String(seconds)
                headers[.rateRemainingRequestsMinute] = "0"
            }
            headers[.mistralCorrelationID] = Identifiers.uuid()
            headers[.kongUpstreamLatency] = String(configuration.latency.milliseconds)
            headers[.kongProxyLatency] = "0"
        }
        headers[.kongRequestID] = requestID

        record(request: request, body: body, apiKey: apiKey, route: route, status: outcome.status.code, outcome: outcome,
               fault: outcome.fault, receivedAt: receivedAt)

        switch outcome.body {
        case .json(let buffer):
            return Response(status: outcome.status, headers: headers, body: ResponseBody(byteBuffer: buffer))
        case .stream(let script):
            let pace = configuration.streamChunkDelay
            let fault = outcome.fault
            let counters = self.counters
            return Response(status: outcome.status, headers: headers, body: ResponseBody { writer in
                try await StreamWriter.write(script, pace: pace, fault: fault, channel: channel, writer: &writer)
                counters.streamCompleted()
            })
        }
    }

    private func record(request: Request, body: ByteBuffer, apiKey: String?, route: Route?, status: Int?, outcome: Outcome?,
                        fault: Fault?, receivedAt: Double) {
        var streamed = false
        if case .stream? = outcome?.body { streamed = true }
        requestLog.append(
            receivedAt: receivedAt, method: request.method, path: request.uri.path, query: request.uri.query,
            headers: request.headers, body: body, apiKey: apiKey, status: status, fault: fault, usage: outcome?.usage,
            streamed: streamed
        )
        counters.record(route: route?.template ?? "unknown", status: status ?? 0, fault: fault != nil, streamed: streamed,
                        usage: outcome?.usage)
        if logger.logLevel <= .debug {
            logger.debug("\(request.method) \(request.uri.path) → \(status.map(String.init) ?? "reset")\(fault.map { " [fault \($0.name)]" } ?? "")")
        }
    }

    /// `Authorization: Bearer <key>` (scheme case-insensitive, as HTTP says); nil otherwise.
    static func bearerKey(in headers: HTTPFields) -> String? {
        guard let value = headers[.authorization] else { return nil }
        let utf8 = value.utf8
        guard utf8.count > 7 else { return nil }
        let scheme = value.prefix(7)
        guard scheme.lowercased() == "bearer " else { return nil }
        let key = value.dropFirst(7).trimmingCharacters(in: " ")
        return key.isEmpty ? nil : key
    }

    static func isAuthorized(_ key: String?, configuration: MockMistralConfiguration) -> Bool {
        guard let key else { return false }
        return configuration.acceptedKeys.isEmpty || configuration.acceptedKeys.contains(key)
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in character: Character) -> String {
        var slice = self[...]
        while slice.first == character { slice = slice.dropFirst() }
        while slice.last == character { slice = slice.dropLast() }
        return String(slice)
    }
}
