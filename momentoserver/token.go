package momentoserver

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// SDKToken returns token, a token minted by access.Authority.Mint, in the
// form the Momento SDKs take as a disposable token
// (CredentialProvider.fromDisposableToken in Node.js, auth.FromDisposableToken
// in Go): the standard base64 of a JSON object that holds the token as
// "api_key" and endpoint as "endpoint". The SDKs send the token itself, as
// it was minted, in the authorization header.
//
// The SDKs derive hosts from endpoint ("cache." + endpoint, and so on), which
// are not this server: give them endpoint overrides that name its address
// (see the package doc). endpoint must not be empty, or the SDKs refuse the
// token; the server's address is a fine choice.
func SDKToken(token, endpoint string) string {
	b, err := json.Marshal(struct {
		APIKey   string `json:"api_key"`
		Endpoint string `json:"endpoint"`
	}{token, endpoint})
	if err != nil {
		panic("momentoserver: internal error: " + err.Error()) // two strings always marshal
	}
	return base64.StdEncoding.EncodeToString(b)
}

// fromSDKToken returns the token inside the SDKs' disposable-token form
// (see SDKToken), and whether s was in that form. A token minted by package
// access never is: it starts with its version byte, not with '{'.
func fromSDKToken(s string) (string, bool) {
	if !strings.HasPrefix(s, "eyJ") { // base64 of `{"`
		return "", false
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", false
	}
	var t struct {
		APIKey string `json:"api_key"`
	}
	if json.Unmarshal(b, &t) != nil || t.APIKey == "" {
		return "", false
	}
	return t.APIKey, true
}
