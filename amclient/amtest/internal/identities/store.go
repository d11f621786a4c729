package identities

import (
	"strings"
	"time"

	"github.com/thingway/thingway/amclient/amtest/internal/store"
)

// The store kinds of identities.
const (
	// Kind holds the identities, keyed by [StoreKey].
	Kind = "identity"
	// OrderKind lists identities in the order queries answer them (by
	// _id, as AM's identity store sorts it, case counting): its keys are
	// [OrderKey], its values the identity's [StoreKey].
	OrderKind = "identity-order"
)

// StoreKey is the key of realm's identity id: names compare without case.
func StoreKey(realm, id string) string { return realm + "\x00" + strings.ToLower(id) }

// RealmPrefix is the key prefix of a realm's identities, in both kinds.
func RealmPrefix(realm string) string { return realm + "\x00" }

// OrderKey is the key of realm's identity id in [OrderKind].
func OrderKey(realm, id string) string { return realm + "\x00" + id }

// Put writes x and its place in the order.
func Put(tx store.Tx, x *Identity) error {
	k := StoreKey(x.Realm, x.ID)
	if err := tx.Put(Kind, k, x, time.Time{}); err != nil {
		return err
	}
	return tx.Put(OrderKind, OrderKey(x.Realm, x.ID), &k, time.Time{})
}

// Delete deletes x and its place in the order.
func Delete(tx store.Tx, x *Identity) error {
	if err := tx.Del(Kind, StoreKey(x.Realm, x.ID)); err != nil {
		return err
	}
	return tx.Del(OrderKind, OrderKey(x.Realm, x.ID))
}

// Scan calls f for the identities of realm in _id order, from the one
// after the order key after, until f returns false; f gets each one's
// order key.
func Scan(tx store.Tx, realm, after string, f func(okey string, x *Identity) (bool, error)) error {
	return tx.Scan(OrderKind, RealmPrefix(realm), after, func(okey string, decode func(any) error) (bool, error) {
		var k string
		if err := decode(&k); err != nil {
			return false, err
		}
		var x Identity
		found, err := tx.Get(Kind, k, &x)
		if err != nil || !found {
			return err == nil, err
		}
		return f(okey, &x)
	})
}
