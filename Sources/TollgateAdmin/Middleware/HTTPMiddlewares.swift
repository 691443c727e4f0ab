import Foundation
import TollgateDomain
import HTTPTypes
import Hummingbird
import Logging

/// Gives every request an id (`x-request-id`), echoed in the response and recorded in audit rows.
/// A well-formed id sent by the client (a proxy's, say) is kept so logs line up across hops.
struct RequestIDMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let incoming = request.headers[.xRequestID].flatMap { id in
            id.count <= 128 && id.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) ? id : nil
        }
        let id = incoming ?? UUID.random().apiString
        var response = try await RequestIdentity.$current.withValue(id) {
            try await next(request, context)
        }
        response.headers[.xRequestID] = id
        return response
    }
}

/// Refuses bodies over the limit with 413 before any handler or decoder sees them.
struct BodyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    let maxBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBytes {
            return problemResponse(.payloadTooLarge(limit: maxBytes))
        }
        var request = request
        do {
            _ = try await request.collectBody(upTo: maxBytes)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            return problemResponse(.payloadTooLarge(limit: maxBytes))
        }
        return try await next(request, context)
    }
}

func problemResponse(_ problem: Problem) -> Response {
    Response(status: .init(code: problem.status), headers: [.contentType: "application/problem+json"],
             body: .init(byteBuffer: ByteBuffer(data: problem.jsonData)))
}

extension HTTPField.Name {
    static let xRequestID = Self("x-request-id")!
}
