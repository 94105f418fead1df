// Package browsertest checks that detlab notebooks render in a real browser:
// its test starts Jupyter's classic Notebook server on 127.0.0.1 with a token
// and the detlab kernel installed into a temporary prefix, executes the
// quickstart (shrunk by its parameters) through Jupyter, opens it in headless
// Chromium, and checks from the page's DOM that the figures are <img>
// elements holding data:image/png. The screenshot is saved as a CI artefact
// at out/browser/quickstart.png (DETLAB_BROWSER_OUT overrides the directory).
//
// It needs Debian's jupyter-notebook, jupyter-nbconvert and chromium, and is
// skipped, naming them, when they are missing (and under -short).
package browsertest
