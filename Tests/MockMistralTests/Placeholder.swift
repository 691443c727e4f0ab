// Placeholder; replace or delete freely.
import Testing
