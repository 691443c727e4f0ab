// Placeholder until CLI tests land; delete when adding real tests.
import Testing
