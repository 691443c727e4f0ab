/// `POST /v1/chat/completions`, `/v1/agents/completions`, `/v1/fim/completions`.
extension EndpointContext {
    func completion(_ route: Route, document: JSONDocument) throws(RequestFailure) -> EndpointResult {
        let request: CompletionRequest
        switch route {
        case .fimCompletions:
            request = try CompletionRequest.parseFIM(document, rejectUnknownModels: configuration.rejectUnknownModels)
        case .agentsCompletions:
            request = try CompletionRequest.parseChat(document, agents: true, rejectUnknownModels: configuration.rejectUnknownModels)
        default:
            request = try CompletionRequest.parseChat(document, agents: false, rejectUnknownModels: configuration.rejectUnknownModels)
        }
        let plan = ReplyPlan(request: request, completionTokens: configuration.completionTokens)
        let renderer = CompletionRenderer(
            id: Identifiers.hex32(),
            created: WallClock.unixSeconds(),
            model: request.model,
            plan: plan,
            choices: request.choices,
            padding: configuration.streamPadding
        )
        if request.stream {
            return EndpointResult(body: .stream(renderer.streamScript(tokensPerChunk: configuration.tokensPerChunk)), usage: plan.usage)
        }
        return .json(renderer.jsonBody(), usage: plan.usage)
    }
}
