// Placeholder so the package builds until the mock server lands; replace freely.
print("mock-mistral: not built yet")
