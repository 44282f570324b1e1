package mongostore

import (
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"standin/server/audit"
)

// decodeEvent reads one stored event. A document the strict decoding
// rejects, such as one whose time a hand edit turned into a string, is
// salvaged field by field: what can be read is kept, and Damaged says
// what could not, so that one bad document stops neither the start-up
// nor a walk, a page or an export. The audit log's Verify reports it (its
// hash no longer matches what is readable, if anything).
//
// A document without a numeric _id is no event of the chain: Foreign is
// set to its _id (walks, which read ranges of seqs, never meet one).
func decodeEvent(raw bson.Raw) audit.Stored {
	var d eventDoc
	damaged := ""
	if err := bson.Unmarshal(raw, &d); err != nil {
		var ok bool
		if d, damaged, ok = salvage(raw, err); !ok {
			id := raw.Lookup("_id").String()
			if id == "" {
				id = "(none)"
			}
			return audit.Stored{Foreign: id}
		}
	}
	return audit.Stored{Seq: d.Seq, Event: d.event(), Damaged: damaged}
}

// salvage reads what it can of a document the strict decoding rejected
// with cause; damaged says what it could not. ok is false for a document
// without a numeric _id.
func salvage(raw bson.Raw, cause error) (d eventDoc, damaged string, ok bool) {
	id, err := raw.LookupErr("_id")
	if err != nil {
		return d, "", false
	}
	seq, ok := id.AsInt64OK()
	if !ok {
		return d, "", false
	}
	d.Seq, d.SeqField = seq, seq
	elems, err := raw.Elements()
	if err != nil {
		return d, "the document cannot be read", true
	}
	var bad []string
	for _, el := range elems {
		v := el.Value()
		var ok bool
		switch el.Key() {
		case "id":
			d.ID, ok = v.StringValueOK()
		case "seq":
			if d.SeqField, ok = v.AsInt64OK(); !ok {
				d.SeqField = seq
			}
		case "time":
			var ms int64
			if ms, ok = v.DateTimeOK(); ok {
				d.Time = time.UnixMilli(ms).UTC()
			}
		case "type":
			d.Type, ok = v.StringValueOK()
		case "actor":
			ok = salvageUser(v, &d.Actor)
		case "subject":
			ok = salvageUser(v, &d.Subject)
		case "impersonation_id":
			d.ImpersonationID, ok = v.StringValueOK()
		case "action":
			d.Action, ok = v.StringValueOK()
		case "object":
			d.Object, ok = v.StringValueOK()
		case "project":
			d.Project, ok = v.StringValueOK()
		case "outcome":
			d.Outcome, ok = v.StringValueOK()
		case "reason":
			d.Reason, ok = v.StringValueOK()
		case "ip":
			d.IP, ok = v.StringValueOK()
		case "user_agent":
			d.UserAgent, ok = v.StringValueOK()
		case "projects":
			d.Projects, ok = salvageStrings(v)
		case "prev_hash":
			d.PrevHash, ok = v.StringValueOK()
		case "hash":
			d.Hash, ok = v.StringValueOK()
		default:
			ok = true // as the strict decoding, unknown fields are ignored
		}
		if !ok {
			bad = append(bad, fmt.Sprintf("%s (it holds %s)", el.Key(), typeWords(v.Type)))
		}
	}
	if len(bad) == 0 {
		return d, "it cannot be decoded: " + cause.Error(), true
	}
	return d, "its " + strings.Join(bad, ", ") + " cannot be read", true
}

func salvageUser(v bson.RawValue, dst *eventUserDoc) bool {
	doc, ok := v.DocumentOK()
	if !ok {
		return false
	}
	var u eventUserDoc
	if err := bson.Unmarshal(doc, &u); err != nil {
		return false
	}
	*dst = u
	return true
}

func salvageStrings(v bson.RawValue) ([]string, bool) {
	if v.Type == bson.TypeNull {
		return nil, true
	}
	arr, ok := v.ArrayOK()
	if !ok {
		return nil, false
	}
	values, err := arr.Values()
	if err != nil {
		return nil, false
	}
	out := make([]string, 0, len(values))
	for _, x := range values {
		s, ok := x.StringValueOK()
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// typeWords names a BSON type for a person.
func typeWords(t bson.Type) string {
	switch t {
	case bson.TypeString:
		return "text"
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble, bson.TypeDecimal128:
		return "a number"
	case bson.TypeDateTime, bson.TypeTimestamp:
		return "a date"
	case bson.TypeEmbeddedDocument:
		return "a document"
	case bson.TypeArray:
		return "a list"
	case bson.TypeBoolean:
		return "true or false"
	case bson.TypeNull, bson.TypeUndefined:
		return "null"
	default:
		return "a value of type " + t.String()
	}
}

// headOf reads the seq and hash of a document projected to them,
// tolerating a hash that is not a string (it reads as "").
func headOf(raw bson.Raw) (seq int64, hash string, ok bool) {
	seq, ok = raw.Lookup("_id").AsInt64OK()
	if !ok {
		return 0, "", false
	}
	hash, _ = raw.Lookup("hash").StringValueOK()
	return seq, hash, true
}
