import Testing
@testable import TollgateProxy

@Suite("Proxy configuration")
struct ProxyConfigurationTests {
    static let base = ["DATABASE_URL": "postgres://u:p@localhost/db"]

    @Test func admissionTicketSettings() throws {
        #expect(try ProxyConfiguration.load(environment: Self.base).admissionTickets)
        for (text, on) in [("false", false), ("0", false), ("off", false), ("TRUE", true), ("yes", true)] {
            let c = try ProxyConfiguration.load(environment: Self.base.merging(["TOLLGATE_ADMISSION_TICKETS": text]) { $1 })
            #expect(c.admissionTickets == on, "\(text)")
        }
        let idle = try ProxyConfiguration.load(environment: Self.base.merging(["TOLLGATE_ADMISSION_TICKET_IDLE_MS": "250"]) { $1 })
        #expect(idle.admissionTicketIdleRelease == .milliseconds(250))
        for bad in [["TOLLGATE_ADMISSION_TICKETS": "maybe"], ["TOLLGATE_ADMISSION_TICKET_IDLE_MS": "10"]] {
            #expect(throws: ProxyConfigurationError.self) {
                try ProxyConfiguration.load(environment: Self.base.merging(bad) { $1 })
            }
        }
    }
}
