/// Maps a matched route to its handler. Shared by the HTTP responder and `MockMistral.usage(…)`,
/// so the usage a test predicts is computed by the very code that answers the request.
extension EndpointContext {
    /// - Parameter persist: false for dry runs (usage prediction): conversations are not stored.
    func handle(_ route: Route, document: JSONDocument?, persist: Bool = true) throws(RequestFailure) -> EndpointResult {
        switch route {
        case .listModels:
            return listModels()
        case .retrieveModel(let id):
            return try retrieveModel(id)
        default:
            break
        }
        guard let document else { preconditionFailure("routes with a JSON body get a parsed document") }
        switch route {
        case .chatCompletions, .fimCompletions, .agentsCompletions:
            return try completion(route, document: document)
        case .embeddings:
            return try embeddings(document: document)
        case .moderations, .chatModerations:
            return try moderation(route, document: document)
        case .classifications, .chatClassifications:
            return try classification(route, document: document)
        case .ocr:
            return try ocr(document: document)
        case .startConversation, .appendConversation, .restartConversation:
            return try conversation(route, document: document, persist: persist)
        case .listModels, .retrieveModel:
            preconditionFailure("handled above")
        }
    }
}
