// Package pages is the view of the local AM's web pages: their HTML
// templates, the one inline style sheet, the Content-Security-Policy that
// allows it by hash, and the headers every page carries. A handler fills a
// [View] (its Kind picks the page: signin, code, consent, message,
// identities) and calls [SetHeaders] and [Render].
//
// It owns how a page looks, not what it does: sessions, sign-in, CSRF
// checks and the identities behind a page belong to amclient/amtest, the
// device grant's rules to amclient/amtest/internal/oauth2; it must import
// neither (nor any other package of the module). It is the only package of the local AM that imports
// html/template, and it parses its templates on the first page rendered,
// not at init.
package pages
