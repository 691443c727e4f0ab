// Placeholder so the package builds until the mock server lands; replace or delete freely.
enum MockMistralPlaceholder {}
