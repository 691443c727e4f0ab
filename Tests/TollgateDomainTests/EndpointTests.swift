import Testing
@testable import TollgateDomain

@Suite struct EndpointTests {
    @Test func emptyAllowListAllowsEverythingExceptBatch() {
        let list = EndpointAllowList([])
        for family in EndpointFamily.allCases {
            #expect(list.allows(family) == (family != .batch), "\(family)")
        }
        #expect(EndpointFamily.allowedByDefault.count == EndpointFamily.allCases.count - 1)
        #expect(!EndpointFamily.allowedByDefault.contains(.batch))
    }

    @Test func explicitListAllowsOnlyWhatIsListed() {
        let list = EndpointAllowList([.chat, .embeddings])
        for family in EndpointFamily.allCases {
            #expect(list.allows(family) == [.chat, .embeddings].contains(family), "\(family)")
        }
    }

    @Test func batchIsAllowedWhenListed() {
        #expect(EndpointAllowList([.batch]).allows(.batch))
        #expect(!EndpointAllowList([.batch]).allows(.chat))
        let both = EndpointAllowList([.batch, .chat, .files])
        #expect(both.allows(.batch) && both.allows(.chat) && both.allows(.files))
        #expect(!both.allows(.fim))
    }

    @Test func everySingleFamilyList() {
        for listed in EndpointFamily.allCases {
            let list = EndpointAllowList([listed])
            for family in EndpointFamily.allCases {
                #expect(list.allows(family) == (family == listed))
            }
        }
    }

    /// Stored in the database and used by the admin API: renaming one is a breaking change.
    @Test func rawValuesAreStable() {
        #expect(EndpointFamily.allCases.map(\.rawValue) == [
            "chat", "fim", "embeddings", "moderations", "classifications", "agents", "conversations", "ocr",
            "models", "files", "batch",
        ])
        #expect(EndpointFamily(rawValue: "Chat") == nil)
    }

    @Test func rateLimitsDefaultToUnlimited() {
        let limits = RateLimits()
        #expect(limits.requestsPerMinute == nil && limits.tokensPerMinute == nil && limits.maxConcurrent == nil)
        #expect(RateLimits(requestsPerMinute: 60) != limits)
    }

    @Test func adminRoles() {
        #expect(AdminRole.allCases.map(\.rawValue) == ["platform_admin", "tenant_admin", "tenant_viewer"])
        #expect(!AdminRole.platformAdmin.isTenantScoped && AdminRole.platformAdmin.canMutate)
        #expect(AdminRole.tenantAdmin.isTenantScoped && AdminRole.tenantAdmin.canMutate)
        #expect(AdminRole.tenantViewer.isTenantScoped && !AdminRole.tenantViewer.canMutate)
    }
}
