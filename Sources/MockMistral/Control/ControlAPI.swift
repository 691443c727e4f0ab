import HTTPTypes
import Hummingbird
import NIOCore

/// The HTTP control API for out-of-process users (local stack, benchmarks, multi-process tests).
/// Everything lives under `/_mock/`, which no Mistral path can collide with; no auth, not logged.
///
/// | method | path | effect |
/// |---|---|---|
/// | GET | /_mock/health | `{"status":"ok"}` |
/// | GET | /_mock/requests?path=&since=&limit= | request log, oldest first |
/// | DELETE | /_mock/requests | clear the log |
/// | GET / DELETE | /_mock/stats | counters / reset them |
/// | GET / POST / DELETE | /_mock/faults | pending faults / inject (object or array) / clear |
/// | GET / PATCH | /_mock/config | current configuration / change some fields |
/// | POST | /_mock/usage | `{"path":…,"body":{…}}` → the usage the mock would bill |
/// | POST | /_mock/reset | log, faults, stats, conversations cleared (config kept) |
extension MockMistral {
    func controlResponse(to request: Request) async -> Response {
        var request = request
        let body = (try? await request.collectBody(upTo: 16 << 20)) ?? ByteBuffer()
        let path = request.uri.path
        let method = request.method
        switch (method, path) {
        case (.get, "/_mock/health"):
            return Self.control(.ok, "{\"status\":\"ok\"}")
        case (.get, "/_mock/requests"):
            return Self.control(.ok, renderRequests(request))
        case (.delete, "/_mock/requests"):
            requestLog.clear()
            return Self.control(.ok, "{\"cleared\":true}")
        case (.get, "/_mock/stats"):
            return Self.control(.ok, ControlJSON.stats(stats))
        case (.delete, "/_mock/stats"):
            resetStats()
            return Self.control(.ok, "{\"cleared\":true}")
        case (.get, "/_mock/faults"):
            return Self.control(.ok, ControlJSON.faults(pendingFaults))
        case (.post, "/_mock/faults"):
            do {
                let injections = try ControlParsing.faults(Array(body.readableBytesView))
                for injection in injections { inject(injection.fault, count: injection.count, matching: injection.path) }
                return Self.control(.created, ControlJSON.faults(pendingFaults))
            } catch {
                return Self.control(.badRequest, ControlJSON.error(error.message))
            }
        case (.delete, "/_mock/faults"):
            clearFaults()
            return Self.control(.ok, "{\"cleared\":true}")
        case (.get, "/_mock/config"):
            return Self.control(.ok, ControlJSON.configuration(configuration))
        case (.patch, "/_mock/config"), (.post, "/_mock/config"):
            do {
                let changes = try ControlParsing.configurationChanges(Array(body.readableBytesView))
                updateConfiguration(changes)
                return Self.control(.ok, ControlJSON.configuration(configuration))
            } catch {
                return Self.control(.badRequest, ControlJSON.error(error.message))
            }
        case (.post, "/_mock/usage"):
            return usageResponse(Array(body.readableBytesView))
        case (.post, "/_mock/reset"):
            reset()
            return Self.control(.ok, "{\"reset\":true}")
        default:
            return Self.control(.notFound, ControlJSON.error("unknown control endpoint \(method) \(path)"))
        }
    }

    private func renderRequests(_ request: Request) -> String {
        let query = request.uri.queryParameters
        var entries = requestLog.entries
        if let path = query["path"] { entries = entries.filter { $0.path == path } }
        if let since = query["since"].flatMap({ Int($0) }) { entries = entries.filter { $0.sequence > since } }
        if let limit = query["limit"].flatMap({ Int($0) }), limit >= 0 { entries = Array(entries.suffix(limit)) }
        return ControlJSON.requests(entries)
    }

    private func usageResponse(_ bytes: [UInt8]) -> Response {
        let document: JSONDocument
        do { document = try JSONDocument(bytes: bytes) } catch {
            return Self.control(.badRequest, ControlJSON.error("body is not JSON: \(error.message)"))
        }
        guard let path = document.root["path"]?.string, let target = document.root["body"] else {
            return Self.control(.badRequest, ControlJSON.error("expected {\"path\": \"/v1/…\", \"body\": {…}}"))
        }
        do {
            let usage = try self.usage(path: path, body: document.raw(target))
            return Self.control(.ok, ControlJSON.usage(usage))
        } catch let rejected as MockRequestRejected {
            return Self.control(.unprocessableContent, "{\"rejected\":{\"status\":\(rejected.status),\"body\":\(jsonEncodedString(rejected.body))}}")
        } catch {
            return Self.control(.internalServerError, ControlJSON.error("\(error)"))
        }
    }

    private static func control(_ status: HTTPResponse.Status, _ json: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: json)))
    }
}
