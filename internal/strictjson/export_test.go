package strictjson

// CheckTokens is the decoder-based check, for comparing the two walks.
var CheckTokens = checkTokens
