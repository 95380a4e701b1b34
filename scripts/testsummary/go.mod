module github.com/heraldhq/herald/scripts/testsummary

go 1.26.0
