package wire_test

import (
	"fmt"

	"github.com/detlab/detlab/kernel/wire"
)

// A front end's request is signed with the connection key; the kernel decodes
// it, checking the signature, and answers with a reply that carries the
// request's header as parent.
func ExampleDecode() {
	signer, _ := wire.NewSigner("hmac-sha256", "secret-key")
	req, _ := wire.NewMessage("frontend-session", "kernel_info_request", nil, map[string]any{})
	frames := wire.Encode(req, signer)

	got, err := wire.Decode(frames, signer)
	fmt.Println(got.Type(), err)

	frames[len(frames)-1] = []byte(`{"tampered":true}`)
	_, err = wire.Decode(frames, signer)
	fmt.Println(err)
	// Output:
	// kernel_info_request <nil>
	// wire: bad or missing signature
}
