// Package momentoserver serves Momento's topics protocol from a topics
// engine, so that the real Momento SDKs talk to it: a local or CI stand-in
// for Momento Topics.
package momentoserver
