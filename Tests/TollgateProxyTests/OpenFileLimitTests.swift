#if canImport(Glibc)
import Glibc
import Testing
import TollgateRuntime

@Suite("Open-file limit")
struct OpenFileLimitTests {
    /// A soft limit below the hard one is raised to it. The test lowers the soft limit by one
    /// first (harmless to the tests running beside it), so it fails if raising does nothing.
    @Test func softLimitIsRaisedToTheHardLimit() throws {
        let before = OpenFileLimit.raiseToHardLimit()
        try #require(before.soft > 1)
        var lowered = rlimit(rlim_cur: rlim_t(before.soft - 1), rlim_max: rlim_t(before.hard))
        try #require(setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &lowered) == 0)
        #expect(OpenFileLimit.current.soft == before.soft - 1)

        let after = OpenFileLimit.raiseToHardLimit()
        #expect(after.soft == before.soft)
        #expect(after.hard == before.hard)
        if after.hard != rlim_t.max { #expect(after.soft == after.hard) }
    }
}
#endif
