package standin

import (
	"fmt"
	"log/slog"
	"slices"
)

// The personal data a facility keeps about a user for safety records, by
// field name. Fields the impersonation settings do not list as shown to
// staff are masked in every view but the user's own (see
// ImpersonationSettings.Masked).
const (
	FieldPhone            = "phone"
	FieldEmergencyContact = "emergency_contact"
	FieldDateOfBirth      = "date_of_birth"
)

// PersonalFields lists the personal data fields in the order pages show
// them.
var PersonalFields = []string{FieldPhone, FieldEmergencyContact, FieldDateOfBirth}

// CheckField returns an EInvalid error unless field is one of
// PersonalFields.
func CheckField(field string) error {
	if slices.Contains(PersonalFields, field) {
		return nil
	}
	return Errorf(EInvalid, "%q is not a personal data field; they are phone, emergency_contact and date_of_birth.", clip(field))
}

// FieldLabel names a personal data field for people ("phone number").
func FieldLabel(field string) string {
	switch field {
	case FieldPhone:
		return "phone number"
	case FieldEmergencyContact:
		return "emergency contact"
	case FieldDateOfBirth:
		return "date of birth"
	}
	return field
}

// PersonalData is what a facility keeps about a user for safety records.
type PersonalData struct {
	Phone            string
	EmergencyContact string
	DateOfBirth      string // YYYY-MM-DD
}

// LogValue keeps the values out of logs: only which fields are kept.
func (p PersonalData) LogValue() slog.Value {
	return slog.StringValue(fmt.Sprintf("personal data (%d fields kept)", p.count()))
}

func (p PersonalData) count() int {
	n := 0
	for _, f := range PersonalFields {
		if v, _ := p.Get(f); v != "" {
			n++
		}
	}
	return n
}

// Get returns the value of field and whether field is a personal data
// field at all.
func (p PersonalData) Get(field string) (string, bool) {
	switch field {
	case FieldPhone:
		return p.Phone, true
	case FieldEmergencyContact:
		return p.EmergencyContact, true
	case FieldDateOfBirth:
		return p.DateOfBirth, true
	}
	return "", false
}
