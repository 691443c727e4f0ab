import Foundation
import HTTPTypes
import OpenAPIRuntime
import TollgateDomain
import TollgateStorage

/// Authenticates the admin token of every `/v1` operation and applies `AccessPolicy` before the
/// handler runs, so no handler can forget the tenant check on its path.
struct AuthenticationMiddleware: ServerMiddleware {
    let database: Database
    let hasher: SecretHasher
    let tokens: AdminTokenRepository

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        if case .open = AccessPolicy.rule(for: operationID) {
            return try await next(request, body, metadata)
        }
        let principal = try await authenticate(request)
        try AccessPolicy.authorize(principal, operationID: operationID, method: request.method,
                                   pathTenantID: metadata.pathParameters["tenantId"].map(String.init))
        return try await Principal.$current.withValue(principal) {
            try await next(request, body, metadata)
        }
    }

    private func authenticate(_ request: HTTPRequest) async throws -> Principal {
        guard let header = request.headerFields[.authorization] else { throw Problem.unauthenticated }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer",
              let token = try? SecretToken.parse(parts[1].trimmingCharacters(in: .whitespaces), as: .adminToken)
        else { throw Problem.unauthenticated }
        let hash = hasher.hash(token.value)
        let record = try await database.read { try await tokens.authenticate(hash: hash, on: $0) }
        guard let record else { throw Problem.unauthenticated }
        return Principal(tokenID: record.id, role: record.role, tenantID: record.tenantID)
    }
}
